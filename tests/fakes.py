"""Small stand-ins for a streamed HTTP response, so framing tests control every network read."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence


class FakeRaw:
    """A urllib3-like body that returns the given pieces, one per ``read1`` call."""

    def __init__(self, pieces: Sequence[bytes], error: Optional[BaseException] = None) -> None:
        self._pieces: List[bytes] = [p for p in pieces if p]
        self._error = error
        self.released = False
        self.closed = False
        self.reads = 0
        self._connection = None

    def read1(self, amt: int = -1, decode_content: bool = True) -> bytes:
        self.reads += 1
        if self._pieces:
            return self._pieces.pop(0)
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return b""

    def shutdown(self) -> None:
        raise ValueError("a fake body has no socket")

    def release_conn(self) -> None:
        self.released = True

    def close(self) -> None:
        self.closed = True


class FakeResponse:
    def __init__(self, pieces: Sequence[bytes], error: Optional[BaseException] = None) -> None:
        self.raw = FakeRaw(pieces, error)
        self.headers: Dict[str, str] = {"content-type": "text/event-stream", "x-request-id": "rid-fake"}
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.raw.close()


def stream_of(pieces: Sequence[bytes], error: Optional[BaseException] = None):  # -> ChatStream
    from gigachat_lite.stream import ChatStream

    return ChatStream(FakeResponse(pieces, error))  # type: ignore[arg-type]
