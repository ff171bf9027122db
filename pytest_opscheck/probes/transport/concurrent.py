"""Many exchanges of one check at once, a bounded number at a time, all inside one deadline: ten paths that
drip a byte a second cost one timeout, not ten.

Each worker thread has a client of its own (`fork()`): a timeout closes the client of the exchange it cut, and
no other exchange's. An item still waiting when (nearly) all of the deadline is spent is not started (`late(item)`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

BOUND = 16  # exchanges at once, per check
GRACE = 0.5  # beyond the deadline, for a worker to hand back the exchange its own deadline just cut
MIN_LEFT = 0.1  # an exchange is started only while this much of the deadline is left

C = TypeVar("C")
I = TypeVar("I")  # noqa: E741 - an item, as in the standard typing examples
R = TypeVar("R")


def budget(seconds: float, deadline: float) -> float:
    """What is left of the check's `seconds` before `deadline` (time.monotonic()), rounded up to a tenth: the
    whole timeout for the exchanges that start at once, and an exchange cut by it ends at the deadline, not
    before (so that no worker starts another one it could not give a fair time)."""
    return min(seconds, math.ceil((deadline - time.monotonic()) * 10) / 10)


def gather(
    items: Sequence[I],
    probe: Callable[[C, I, float], R],
    seconds: float,
    fork: Callable[[], C],
    close: Callable[[C], None],
    late: Callable[[I], R],
    bound: int = BOUND,
) -> list[R]:
    """`probe(client, item, budget)` for every item, in order of `items`, at most `bound` at once, all within
    `seconds` from now; `budget` is what is left of it when the item starts. `probe` must itself keep to its
    budget (every web exchange does) and return its failures rather than raise them (one it raises is raised
    again here, once the workers are joined)."""
    if not items:
        return []
    deadline = time.monotonic() + seconds
    results: dict[int, R] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    pending = iter(range(len(items)))

    def work() -> None:
        client = fork()
        try:
            while True:
                with lock:
                    index = next(pending, None)
                if index is None or time.monotonic() > deadline - MIN_LEFT:
                    return
                outcome = probe(client, items[index], budget(seconds, deadline))
                with lock:
                    results[index] = outcome
        except BaseException as exc:  # noqa: BLE001 - a probe that raised is a bug: raised again in the caller
            errors.append(exc)
        finally:
            close(client)

    workers = [threading.Thread(target=work, name="opscheck-gather", daemon=True)
               for _ in range(min(bound, len(items)))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, deadline + GRACE - time.monotonic()))
    if errors:
        raise errors[0]
    with lock:
        return [results[i] if i in results else late(items[i]) for i in range(len(items))]
