"""Resolution steps in Swarm terms: on a Swarm stack (`swarm_stack`), each `{compose} VERB ...` command of a
check's resolution becomes the Swarm command that does the same (`docker service ps`, `docker service logs`,
`docker stack deploy`), before the placeholders are rendered. Any other text is left as written."""

from __future__ import annotations

import re

# A command runs to the end of its line, or to the next {compose} command on it.
_COMMAND = re.compile(r"\{compose\} (ps|logs|up|start|restart|stop|exec|config|down)\b((?:(?!\{compose\})[^\n])*)")
# Where a command's own words end: two spaces (prose follows), a shell operator, a parenthesis.
_OPERATOR = re.compile(r"\s{2,}|\s(?:&&|\|\||\||;|#|\()|\)")
STACK_FILE = "docker-compose.yml"
EXEC_NOTE = ("On a swarm, docker exec runs on the node that runs the task: docker service ps --no-trunc "
             "{service} names it.")


def swarm_terms(text: str, stack: str) -> str:
    """`text` with its Compose commands as Swarm commands for the stack `stack`, and `<stack>` as its name."""
    translated = _COMMAND.sub(lambda m: _one(m.group(1), m.group(2), stack), text).replace("<stack>", stack)
    if "docker exec $(" in translated and "docker exec $(" not in text:
        named = [m.group(2).split()[0] for m in _COMMAND.finditer(text) if m.group(1) == "exec" and m.group(2).split()]
        service = f"{stack}_{named[0]}" if named else f"the stack's service (docker stack services {stack})"
        translated += "\n" + EXEC_NOTE.format(service=service)
    return translated


def _one(verb: str, rest: str, stack: str) -> str:
    if verb == "exec":  # the command in the container runs to the end of the line, pipes included
        name, _, inside = rest.strip().partition(" ")
        return (f"docker exec $(docker ps -q -f label=com.docker.swarm.service.name={stack}_{name} | head -n 1) "
                f"{inside}").rstrip()
    cut = _OPERATOR.search(rest)
    args, tail = (rest[: cut.start()], rest[cut.start():]) if cut else (rest, "")
    words = args.split()
    service = next((w for w in words if not w.startswith("-")), None)
    full = f"{stack}_{service}" if service else None
    lines = re.search(r"--tail[= ](\d+)", args)
    if verb == "ps":
        command = f"docker service ps --no-trunc {full}" if full else f"docker stack ps --no-trunc {stack}"
    elif verb == "logs":
        tail_option = f" --tail {lines.group(1)}" if lines else ""
        command = f"docker service logs --timestamps{tail_option} {full or '<service>'}"
    elif verb in ("up", "start"):
        command = f"docker stack deploy -c {STACK_FILE} {stack}"
    elif verb == "restart":
        command = f"docker service update --force {full or '<service>'}"
    elif verb == "stop":
        command = f"docker service scale {full or '<service>'}=0"
    elif verb == "config":
        command = f"docker service inspect --pretty {full}" if full else f"docker stack services {stack}"
    else:  # down
        command = f"docker stack rm {stack}"
    return command + tail
