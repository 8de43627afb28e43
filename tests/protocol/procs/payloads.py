"""Messages whose content proves itself whole: the body is derived from (sender, index)."""

from __future__ import annotations

import hashlib


def body(sender: str, index: int) -> str:
    digest = hashlib.sha256(f"{sender}:{index}".encode()).hexdigest()
    # Sizes from 70 bytes to ~3 KB, so some messages span several writes and pages.
    return f"{sender}:{index}:" + digest * (index % 48 + 1)


def check(detail: str) -> tuple[str, int, bool]:
    """(sender, index, whole?) of a body made by `body`."""
    sender, index, _ = detail.split(":", 2)
    return sender, int(index), detail == body(sender, int(index))
