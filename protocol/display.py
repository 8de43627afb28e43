"""Text from models, messages and task files, made inert before it reaches a terminal: control
characters (ESC, OSC, BEL, CR, backspace, C1) and bidirectional overrides are shown as
escapes, so that a payload cannot retitle, clear or rewrite the user's terminal."""

from __future__ import annotations

import re

# C0 controls but newline and tab, DEL, C1 controls, the bidi marks, embeddings and isolates,
# and lone surrogates (written out as raw bytes, such as 0x9b, an 8-bit CSI, by a
# surrogateescape stream).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    """`text` with every character that a terminal would act on written as an escape."""
    return _UNSAFE.sub(_escape, text)


def inert_line(text: str) -> str:
    """One line of `text`: newlines and tabs escaped too (for table cells and one-line logs)."""
    return inert(text).replace("\n", "\\n").replace("\t", "\\t")
