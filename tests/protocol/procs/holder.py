"""`holder.py LOCK`: take LOCK as a coordinator would, say "locked", then hold it until killed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from protocol.runlock import take


def main() -> None:
    held = take(Path(sys.argv[1]), "test holder", timeout=10)
    print("locked" if held else "refused", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
