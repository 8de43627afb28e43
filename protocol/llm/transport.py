"""HTTP to the model server, and the cassettes that record and replay it.

A transport moves one JSON request and its JSON answer; it does not retry and does not judge
status codes (client.py does both). `HttpxTransport` can also hand over an answer as the raw
bytes arrive (`stream`); the cassettes cannot, so a client with one of them does not stream.
Cassettes sit at this level, so a replay exercises every line of the client above it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

from protocol.atomic import atomic_write_text
from protocol.llm.errors import CassetteMismatch


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamResponse:
    """An answer whose body is still arriving: `chunks` yields its bytes as they come."""

    status: int
    headers: dict[str, str]
    chunks: Iterator[bytes]

    def read(self) -> Any:
        """The rest of the body, decoded as `request` decodes a whole one."""
        data = b"".join(self.chunks)
        try:
            return json.loads(data)
        except ValueError:
            return data.decode("utf-8", errors="replace")


class ConnectFailed(Exception):
    """No connection: refused, unresolvable, reset before or in the middle of an answer."""


class ReadTimedOut(Exception):
    """Connected, but nothing arrived for the read timeout."""


class UnusableURL(Exception):
    """httpx cannot parse the URL (bad port, brackets, host name): no request was sent."""


class Transport(Protocol):
    def request(
        self, method: str, url: str, body: Any, headers: dict[str, str], timeout: float
    ) -> HttpResponse: ...


@runtime_checkable
class StreamingTransport(Transport, Protocol):
    def stream(
        self, method: str, url: str, body: Any, headers: dict[str, str], timeout: float
    ) -> AbstractContextManager[StreamResponse]: ...


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


@contextmanager
def _httpx_errors() -> Iterator[None]:
    """httpx's errors as the transport's own."""
    try:
        yield
    except httpx.ReadTimeout as exc:
        raise ReadTimedOut(str(exc) or "read timed out") from exc
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
        raise ConnectFailed(str(exc) or type(exc).__name__) from exc
    except httpx.TransportError as exc:
        raise ConnectFailed(f"{type(exc).__name__}: {exc}") from exc


def _target(url: str) -> httpx.URL:
    try:
        target = httpx.URL(url)
        _ = target.host  # decodes an IDNA name: a bad one fails here, not mid-request
    except (httpx.InvalidURL, ValueError) as exc:  # IDNA errors are ValueErrors
        raise UnusableURL(str(exc)) from None
    return target


def _chunks(response: httpx.Response) -> Iterator[bytes]:
    with _httpx_errors():  # a cut mid-body is a RemoteProtocolError: ConnectFailed
        yield from response.iter_bytes()


class HttpxTransport:
    """Real HTTP with httpx, one pooled client per transport."""

    def __init__(self, connect_timeout: float = 5.0) -> None:
        self._connect_timeout = connect_timeout
        self._client = httpx.Client()

    def request(
        self, method: str, url: str, body: Any, headers: dict[str, str], timeout: float
    ) -> HttpResponse:
        target = _target(url)
        timeouts = httpx.Timeout(timeout, connect=self._connect_timeout)
        with _httpx_errors():
            response = self._client.request(
                method, target, json=body, headers=headers, timeout=timeouts
            )
        return HttpResponse(response.status_code, _decode(response), dict(response.headers))

    @contextmanager
    def stream(
        self, method: str, url: str, body: Any, headers: dict[str, str], timeout: float
    ) -> Iterator[StreamResponse]:
        """The answer as it arrives. `timeout` is the longest quiet between two reads, so an
        answer that keeps coming is never timed out."""
        target = _target(url)
        timeouts = httpx.Timeout(timeout, connect=self._connect_timeout)
        with (
            _httpx_errors(),
            self._client.stream(
                method, target, json=body, headers=headers, timeout=timeouts
            ) as response,
        ):
            yield StreamResponse(response.status_code, dict(response.headers), _chunks(response))

    def close(self) -> None:
        self._client.close()


_KEPT_HEADERS = {"retry-after", "content-type"}


def _exchange_key(method: str, url: str, body: Any) -> dict[str, Any]:
    # The path only: a replay has no server, and the host may differ from the recording's.
    return {"method": method, "path": urlsplit(url).path, "body": body}


class RecordingTransport:
    """Passes every exchange through to `inner` and appends it to a cassette file."""

    def __init__(self, inner: Transport, path: Path) -> None:
        self._inner = inner
        self._path = Path(path)
        self._lock = threading.Lock()
        self._exchanges: list[dict[str, Any]] = []

    def request(
        self, method: str, url: str, body: Any, headers: dict[str, str], timeout: float
    ) -> HttpResponse:
        key = _exchange_key(method, url, body)
        try:
            response = self._inner.request(method, url, body, headers, timeout)
        except ConnectFailed as exc:
            self._save({"request": key, "failure": "connect", "detail": str(exc)})
            raise
        except ReadTimedOut as exc:
            self._save({"request": key, "failure": "timeout", "detail": str(exc)})
            raise
        kept = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
        self._save(
            {
                "request": key,
                "response": {"status": response.status, "body": response.body, "headers": kept},
            }
        )
        return response

    def _save(self, exchange: dict[str, Any]) -> None:
        with self._lock:
            self._exchanges.append(exchange)
            text = json.dumps({"version": 1, "exchanges": self._exchanges}, indent=1)
            atomic_write_text(self._path, text + "\n", fsync=False)


class ReplayTransport:
    """Answers from a cassette, in recorded order, with no server. A request that differs
    from the recorded one is an error that shows both."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            self._exchanges: list[dict[str, Any]] = list(data["exchanges"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CassetteMismatch(f"cannot read cassette {self._path}: {exc}") from None
        self._next = 0
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        return len(self._exchanges) - self._next

    def request(
        self, method: str, url: str, body: Any, headers: dict[str, str], timeout: float
    ) -> HttpResponse:
        with self._lock:
            if self._next >= len(self._exchanges):
                raise CassetteMismatch(
                    f"cassette {self._path} has no exchange left for {method} "
                    f"{urlsplit(url).path} (it recorded {len(self._exchanges)})"
                )
            exchange = self._exchanges[self._next]
            wanted = _exchange_key(method, url, body)
            if exchange["request"] != wanted:
                raise CassetteMismatch(
                    f"request {self._next + 1} differs from cassette {self._path}:\n"
                    f"  recorded: {_short(exchange['request'])}\n"
                    f"  now:      {_short(wanted)}"
                )
            self._next += 1
        if exchange.get("failure") == "connect":
            raise ConnectFailed(exchange.get("detail", "connection failed (recorded)"))
        if exchange.get("failure") == "timeout":
            raise ReadTimedOut(exchange.get("detail", "read timed out (recorded)"))
        response = exchange["response"]
        return HttpResponse(
            int(response["status"]), response["body"], dict(response.get("headers") or {})
        )


def _short(value: Any, limit: int = 400) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"
