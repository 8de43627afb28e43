"""`rewriter.py FILE N`: replace FILE atomically N times with a self-checking JSON body."""

from __future__ import annotations

import sys
from pathlib import Path

from protocol import atomic_write_json


def main() -> None:
    path, times = Path(sys.argv[1]), int(sys.argv[2])
    for n in range(times):
        atomic_write_json(path, {"n": n, "body": str(n) * (n % 2000)})
    print("done", flush=True)


if __name__ == "__main__":
    main()
