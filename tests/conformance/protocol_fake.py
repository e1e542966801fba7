"""A deliberately broken protocol implementation, for the harness's error tests.

``python tests/conformance/protocol_fake.py MODE``: it answers the hello properly (unless MODE is
about the hello), then misbehaves on the first command as MODE says. Standalone on purpose
(stdlib only), as an implementation in another language would be.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def send(message: Any) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def idle(wake_at: float | None = None) -> None:
    send({"type": "idle", "wake_at": wake_at})


def main(mode: str) -> int:
    hello = json.loads(sys.stdin.readline())
    if mode == "with-child":  # a helper process of its own, which a crash must take down too
        child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
        print(f"child pid {child.pid}", file=sys.stderr, flush=True)
    version = 99 if mode == "wrong-version" else hello["protocol"]
    if mode == "not-json":
        sys.stdout.write("hello, harness\n")
        sys.stdout.flush()
    send({"type": "hello", "protocol": version, "implementation": {"name": mode, "version": "0"}})
    if mode == "chatty":  # one line too many: something after the idle, in the same write
        sys.stdout.write('{"type":"idle","wake_at":null}\n{"type":"idle","wake_at":null}\n')
        sys.stdout.flush()
    else:
        idle(hello["mono"] if mode == "stall" else None)
    for line in sys.stdin:
        message = json.loads(line)
        if message["type"] == "tick":
            idle(message["mono"])  # "stall": asks again for a time that has come, forever
            continue
        if mode == "bad-field":
            args = {"collection": 3, "filter": {}}
            send({"type": "vault", "id": 1, "op": "query", "args": args})
        elif mode == "exit":
            print("fake: giving up on purpose", file=sys.stderr, flush=True)
            return 3
        elif mode == "hang":
            sys.stdin.readline()  # waits for a message the harness will not send
        elif mode == "unknown-result":
            send({"type": "result", "id": message["id"] + 100, "ok": True, "value": None})
        # "late-answer" (and the others): never answers the command within its turn
        idle()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
