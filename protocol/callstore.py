"""The trace store: the full request and answer of every model call, under `.agents/traces/`.

A conversation grows by a turn or two per call, so each call's messages are kept as
content-addressed blobs (`blobs/<sha[:2]>/<sha>.json`): a 25-round conversation costs its turns
once, not 25 times. A call is `calls/<call_id>.json`, naming its blobs. One string longer than
`MAX_STRING_CHARS` is cut with a note saying so; once the store holds `limit_bytes`, calls are
no longer kept and the event says `stored: false`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from protocol.atomic import atomic_write_text

MAX_STRING_CHARS = 200_000


def _cut(value: Any, notes: list[str], where: str = "") -> Any:
    """`value` with every over-long string shortened, and a note for each."""
    if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
        notes.append(f"{where or 'a string'}: cut from {len(value)} to {MAX_STRING_CHARS} chars")
        return value[:MAX_STRING_CHARS] + f"\n[... cut: {len(value) - MAX_STRING_CHARS} chars]"
    if isinstance(value, dict):
        return {k: _cut(v, notes, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v, notes, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


class CallStore:
    def __init__(self, folder: Path, limit_bytes: int = 256 * 1024 * 1024) -> None:
        self.folder = folder
        self.limit_bytes = limit_bytes
        self._used: int | None = None
        self._since_measured = 0
        self._lock = threading.Lock()

    @property
    def calls_dir(self) -> Path:
        return self.folder / "calls"

    @property
    def blobs_dir(self) -> Path:
        return self.folder / "blobs"

    def used_bytes(self) -> int:
        """The store's size: measured, then counted as this process writes, and measured
        again after each eighth of the limit it wrote, so that the other processes' writes
        are seen too (the team can pass the limit by at most an eighth per process)."""
        if self._used is None or self._since_measured >= self.limit_bytes / 8:
            self._since_measured = 0
            total = 0
            for path in self.folder.glob("*/**/*.json"):
                with contextlib.suppress(OSError):
                    total += path.stat().st_size
            self._used = total
        return self._used

    def save(self, call_id: str, request: dict[str, Any], answer: dict[str, Any]) -> bool:
        """Keep one exchange; False when the store is full or cannot be written."""
        if not self.folder.is_dir():
            return False
        with self._lock:
            if self.used_bytes() >= self.limit_bytes:
                return False
            notes: list[str] = []
            request = _cut(request, notes, "request")
            answer = _cut(answer, notes, "answer")
            try:
                messages = [self._blob(m) for m in request.pop("messages", [])]
                record = {
                    "call_id": call_id,
                    "messages": messages,
                    "request": self._blob(request),
                    "answer": answer,
                    "cut": notes,
                }
                text = json.dumps(record, ensure_ascii=False)
                self.calls_dir.mkdir(exist_ok=True)
                atomic_write_text(self.calls_dir / f"{call_id}.json", text, fsync=False)
            except (OSError, ValueError, TypeError):  # a full disk; a value JSON cannot hold
                return False
            self._count(len(text))
            return True

    def _count(self, written: int) -> None:
        self._used = (self._used or 0) + written
        self._since_measured += written

    def _blob(self, value: Any) -> str:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()
        path = self.blobs_dir / digest[:2] / f"{digest}.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text, fsync=False)
            self._count(len(text))
        return digest

    def load(self, call_id: str) -> dict[str, Any] | None:
        """One exchange as it was: `{"request": {... "messages": [...]}, "answer": {...},
        "cut": [...]}`; None when it was not kept. A missing blob reads as a note."""
        try:
            record = json.loads((self.calls_dir / f"{call_id}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        request = self._read_blob(record.get("request", ""))
        if not isinstance(request, dict):
            request = {}
        request["messages"] = [self._read_blob(d) for d in record.get("messages", [])]
        return {"request": request, "answer": record.get("answer", {}), "cut": record.get("cut")}

    def _read_blob(self, digest: str) -> Any:
        try:
            return json.loads((self.blobs_dir / digest[:2] / f"{digest}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return {"missing": f"blob {digest[:12]} is not in the store"}
