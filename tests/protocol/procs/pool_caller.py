"""`pool_caller.py BOARD CONFIG_JSON CALLS`: an agent process of its own making CALLS model
calls through the pool whose slots are counted in BOARD, once a line on stdin says go;
prints "ready", then one line per call, the endpoint that answered it.
`pool_caller.py BOARD hold URL`: take a slot on URL, say "held", then hold it until killed."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from protocol.config import Config
from protocol.llm import ChatMessage, ModelClient
from protocol.llm.pool import Place
from protocol.llm.pool_board import FileBoard, Held


def main() -> None:
    board = FileBoard(Path(sys.argv[1]))
    if sys.argv[2] == "hold":
        held = board.take([Place(sys.argv[3], 1)])
        print("held" if isinstance(held, Held) else "refused", flush=True)
        while True:
            time.sleep(60)
    config = Config.model_validate(json.loads(sys.argv[2]))
    with ModelClient(config, "build", board=board) as client:
        print("ready", flush=True)
        sys.stdin.readline()  # the go: every agent at work at once
        for n in range(int(sys.argv[3])):
            client.chat([ChatMessage.user(f"call {n}")])
            print(client.base_url, flush=True)


if __name__ == "__main__":
    main()
