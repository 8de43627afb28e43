"""`locker.py LOCK COUNTER N`: N times, under LOCK, read COUNTER, add one, write it back."""

from __future__ import annotations

import sys
from pathlib import Path

from protocol import file_lock


def main() -> None:
    lock, counter, times = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    for _ in range(times):
        with file_lock(lock):
            value = int(counter.read_text() or "0")
            counter.write_text(str(value + 1))
    print("done", flush=True)


if __name__ == "__main__":
    main()
