"""Stuck-loop detection: the same failing criteria with the same error, three times, stops."""

from __future__ import annotations

import hashlib
import re

REPEATS_TO_STOP = 3
_NOISE = [
    (re.compile(r"0x[0-9a-f]+"), "0x?"),
    (re.compile(r"\d+(\.\d+)?s\b"), "?s"),  # durations
    (re.compile(r"line \d+"), "line ?"),
    (re.compile(r"/tmp/\S+"), "/tmp/?"),
    (re.compile(r"\b\d+\b"), "?"),
]


def error_signature(evidence: str, lines: int = 5) -> str:
    """The last error lines, with the parts that change between identical failures masked."""
    interesting = [
        line.strip()
        for line in evidence.splitlines()
        if line.strip() and ("Error" in line or "assert" in line or "failed" in line.lower())
    ][-lines:]
    text = "\n".join(interesting)
    for pattern, replacement in _NOISE:
        text = pattern.sub(replacement, text)
    return text


def fingerprint(failing: list[str], evidence: str) -> str:
    key = ",".join(sorted(failing)) + "\n" + error_signature(evidence)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def is_stuck(history: list[str]) -> bool:
    """Whether the newest fingerprint has now been seen `REPEATS_TO_STOP` times."""
    return bool(history) and history.count(history[-1]) >= REPEATS_TO_STOP
