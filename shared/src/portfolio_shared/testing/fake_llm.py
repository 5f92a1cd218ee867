"""A local OpenAI-compatible chat completions server whose replies a test scripts.

``FakeLlm`` listens on 127.0.0.1 on a free port in a thread of its own (its own
event loop), so both synchronous tests driving subprocesses and asynchronous
tests can use it. Point a client at ``fake.base_url`` (it ends in ``/v1``, like
``https://api.openai.com/v1``); any ``POST …/chat/completions`` is answered.

Each request takes the next scripted ``FakeReply`` (``fake.script(...)``), or
calls ``fake.responder`` when one is set, or gets ``fake.default``. A reply is
plain text, tool calls, an HTTP error status, a hang, garbage, or a stream cut
in the middle; text is streamed as Server-Sent Events chunks when the request
says ``"stream": true``. A stream can wait on a ``threading.Event`` gate after
its first chunk, so a test can prove the first token reached the client before
the provider finished.

Every request body is kept in ``fake.requests``; ``in_flight``,
``max_in_flight`` and ``disconnects`` (clients that went away before the
answer was complete) let a test check concurrency and cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["FakeLlm", "FakeReply", "FakeToolCall"]

ReplyKind = Literal["text", "tool_calls", "status", "hang", "garbage", "cut"]


@dataclass(frozen=True)
class FakeToolCall:
    """One function call the fake model requests."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    """A dict is sent JSON-encoded; a string is sent as is (to test unparsable arguments)."""

    id: str = ""


@dataclass(frozen=True)
class FakeReply:
    """One scripted reply; build it with the class methods."""

    kind: ReplyKind
    text: str = ""
    chunks: tuple[str, ...] = ()
    """The pieces a streamed text is sent in; empty means one piece per word."""

    tool_calls: tuple[FakeToolCall, ...] = ()
    status: int = 200
    body: str = ""
    total_tokens: int = 30
    chunk_delay_s: float = 0.0
    """Pause between streamed chunks, in seconds."""

    gate: threading.Event | None = None
    """When set, a stream waits for this event after its first chunk."""

    @classmethod
    def reply_text(
        cls,
        text: str,
        *,
        chunks: tuple[str, ...] = (),
        total_tokens: int = 30,
        chunk_delay_s: float = 0.0,
        gate: threading.Event | None = None,
    ) -> FakeReply:
        return cls(
            "text",
            text=text,
            chunks=chunks,
            total_tokens=total_tokens,
            chunk_delay_s=chunk_delay_s,
            gate=gate,
        )

    @classmethod
    def call_tools(cls, *calls: FakeToolCall, total_tokens: int = 20) -> FakeReply:
        numbered = tuple(
            call if call.id else FakeToolCall(call.name, call.arguments, f"call_{index + 1}")
            for index, call in enumerate(calls)
        )
        return cls("tool_calls", tool_calls=numbered, total_tokens=total_tokens)

    @classmethod
    def error_status(cls, status: int, message: str | None = None) -> FakeReply:
        """Return an HTTP error with an OpenAI-style ``{"error": {"message": ...}}`` body."""
        body = json.dumps({"error": {"message": message or f"fake error {status}"}})
        return cls("status", status=status, body=body)

    @classmethod
    def hang(cls) -> FakeReply:
        """Accept the request and never respond (until the client goes away)."""
        return cls("hang")

    @classmethod
    def garbage(cls) -> FakeReply:
        """Return a 200 whose body is not JSON (or, streaming, not SSE)."""
        return cls("garbage", body="<html>definitely not json")

    @classmethod
    def cut(cls, text: str = "partial answer") -> FakeReply:
        """Start the answer, then close the connection in the middle of it."""
        return cls("cut", text=text)


class FakeLlm:
    """The server; start with ``start()`` (or the ``fake_llm`` pytest fixture)."""

    def __init__(self, *, default: FakeReply | None = None, model: str = "fake-model") -> None:
        self.default = default or FakeReply.reply_text("Hello from the fake model.")
        self.model = model
        self.responder: Callable[[dict[str, Any]], FakeReply] | None = None
        """When set, called with each request body to choose its reply (after the script)."""

        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.disconnects = 0
        self.completed = 0
        self.port = 0
        self._script: deque[FakeReply] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None

    # Scripting and inspection (thread-safe)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def script(self, *replies: FakeReply) -> None:
        """Queue replies for the next requests, in order."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        """Forget scripted replies, recorded requests and counters."""
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.headers.clear()
            self.max_in_flight = self.in_flight
            self.disconnects = 0
            self.completed = 0

    def wait_for_requests(self, count: int, timeout_s: float = 10.0) -> None:
        """Block until ``count`` requests have arrived, or raise ``TimeoutError``."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.requests)} of {count} requests arrived")
                self._changed.wait(left)

    def wait_for_disconnects(self, count: int, timeout_s: float = 10.0) -> None:
        """Block until ``count`` clients went away mid-answer, or raise ``TimeoutError``."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self.disconnects < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.disconnects} of {count} disconnects seen")
                self._changed.wait(left)

    # Lifecycle

    def start(self) -> FakeLlm:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake LLM server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or self._stopping is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FakeLlm:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        finally:
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        ready.set()
        await self._stopping.wait()
        self._server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    # Request handling

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                method, path, headers, body = request
                keep_open = await self._answer(reader, writer, method, path, headers, body)
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            # Only ``stop`` cancels a handler; ending quietly keeps asyncio from
            # reporting the cancelled connection callback as an error.
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _next_reply(self, body: dict[str, Any]) -> FakeReply:
        with self._changed:
            self.requests.append(body)
            self._changed.notify_all()
            if self._script:
                return self._script.popleft()
        if self.responder is not None:
            return self.responder(body)
        return self.default

    async def _answer(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        path: str,
        headers: dict[str, str],
        raw_body: bytes,
    ) -> bool:
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            await _write_response(writer, 404, json.dumps({"error": {"message": "not found"}}))
            return True
        try:
            body = json.loads(raw_body or b"{}")
        except ValueError:
            await _write_response(writer, 400, json.dumps({"error": {"message": "bad json"}}))
            return True
        with self._lock:
            self.headers.append(headers)
        reply = self._next_reply(body)
        stream = bool(body.get("stream"))
        with self._changed:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        finished = False
        try:
            finished = await self._send(reader, writer, reply, stream)
            # A stream ends its connection, so no read races the next request.
            return finished and not stream and reply.kind not in {"cut", "hang"}
        finally:
            with self._changed:
                self.in_flight -= 1
                if finished:
                    self.completed += 1
                else:
                    self.disconnects += 1
                self._changed.notify_all()

    async def _send(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        reply: FakeReply,
        stream: bool,
    ) -> bool:
        """Write ``reply``; return False when the client went away first."""
        if reply.kind == "hang":
            await _until_disconnected(reader)
            return False
        if reply.kind == "status":
            await _write_response(writer, reply.status, reply.body)
            return True
        if reply.kind == "garbage":
            await _write_response(writer, 200, reply.body, content_type="text/html")
            return True
        if not stream and reply.kind == "cut":
            payload = json.dumps(self._completion(reply)).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload[: len(payload) // 2]
            )
            await writer.drain()
            writer.transport.abort()
            return True
        if not stream:
            await _write_response(writer, 200, json.dumps(self._completion(reply)))
            return True
        return await self._stream(reader, writer, reply)

    async def _stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: FakeReply
    ) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nConnection: close\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        if reply.kind == "tool_calls":
            events = [self._chunk({"role": "assistant", "tool_calls": _tool_call_deltas(reply)})]
        else:
            pieces = reply.chunks or _words(reply.text)
            events = [self._chunk({"role": "assistant", "content": piece}) for piece in pieces]
        finish = "tool_calls" if reply.kind == "tool_calls" else "stop"
        events.append(self._chunk({}, finish_reason=finish))
        events.append(self._usage_chunk(reply.total_tokens))

        disconnected = asyncio.ensure_future(_until_disconnected(reader))
        try:
            for index, event in enumerate(events):
                if reply.kind == "cut" and index == 1:
                    writer.write(_chunked(b'data: {"choi'))
                    await writer.drain()
                    writer.transport.abort()
                    return True
                writer.write(_chunked(b"data: " + json.dumps(event).encode() + b"\n\n"))
                await writer.drain()
                if index == 0 and reply.gate is not None:
                    # The gate is a thread event (set from a test's thread), so poll it
                    # while watching for the client going away.
                    while not reply.gate.is_set() and not disconnected.done():
                        await asyncio.wait({disconnected}, timeout=0.01)
                if reply.chunk_delay_s:
                    await asyncio.wait({disconnected}, timeout=reply.chunk_delay_s)
                if disconnected.done():
                    return False
            writer.write(_chunked(b"data: [DONE]\n\n") + _chunked(b""))
            await writer.drain()
            return True
        finally:
            disconnected.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await disconnected

    def _chunk(self, delta: dict[str, Any], *, finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def _usage_chunk(self, total_tokens: int) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": [],
            "usage": _usage(total_tokens),
        }

    def _completion(self, reply: FakeReply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        finish = "stop"
        if reply.kind == "tool_calls":
            message["content"] = None
            message["tool_calls"] = [
                {"id": call.id, "type": "function", "function": _function(call)}
                for call in reply.tool_calls
            ]
            finish = "tool_calls"
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": _usage(reply.total_tokens),
        }


def _usage(total_tokens: int) -> dict[str, int]:
    prompt = total_tokens // 2
    return {
        "prompt_tokens": prompt,
        "completion_tokens": total_tokens - prompt,
        "total_tokens": total_tokens,
    }


def _function(call: FakeToolCall) -> dict[str, str]:
    arguments = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
    return {"name": call.name, "arguments": arguments}


def _tool_call_deltas(reply: FakeReply) -> list[dict[str, Any]]:
    return [
        {"index": index, "id": call.id, "type": "function", "function": _function(call)}
        for index, call in enumerate(reply.tool_calls)
    ]


def _words(text: str) -> tuple[str, ...]:
    """Split text into words that keep their following space, so they join back exactly."""
    pieces: list[str] = []
    for word in text.split(" "):
        pieces.append(word + " ")
    if pieces:
        pieces[-1] = pieces[-1][:-1]
    return tuple(piece for piece in pieces if piece)


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def _until_disconnected(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(1024):
            pass


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return method, path, headers, body


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def _write_response(
    writer: asyncio.StreamWriter, status: int, body: str, *, content_type: str = "application/json"
) -> None:
    payload = body.encode()
    writer.write(
        f"HTTP/1.1 {status} {_reason(status)}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    await writer.drain()
