"""The demo's SMTP server: aiosmtpd on 127.0.0.1, AUTH optional; it accepts mail and keeps none.

    python -m demo.mailserver PORT
"""

from __future__ import annotations

import signal
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session


class Discard:
    """Accepts every message and throws it away (the demo sends none; opscheck's probe sends nothing)."""

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:
        return "250 Message accepted for delivery"


def main() -> None:
    port = int(sys.argv[1])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    controller = Controller(Discard(), hostname="127.0.0.1", port=port, auth_required=False)
    controller.start()
    print(f"smtp: listening on 127.0.0.1:{port}", flush=True)
    try:
        stop.wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
