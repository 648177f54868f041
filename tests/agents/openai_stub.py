"""A local server that speaks enough of the OpenAI Chat Completions API for tests.

It listens on 127.0.0.1 (a free port), in a thread, and answers
`POST /v1/chat/completions` from a script: plain replies, tool calls and HTTP
errors with OpenAI-style JSON bodies, as JSON or, when the request says
`"stream": true`, as server-sent `chat.completion.chunk` events ending in
`data: [DONE]`. Every request is recorded.

Fixture `openai_stub` yields a running `OpenAIStub`. To use it from a test
module, import its function (`from openai_stub import openai_stub_fixture`, the
module's directory is on `sys.path` under pytest's default import mode); the
fixture is registered under the name `openai_stub`:

    def test_reply(openai_stub):
        openai_stub.add_reply("Hello there.")
        openai_stub.add_tool_call("roll_dice", {"sides": 6})
        openai_stub.add_error(503)                        # then a 503
        ...  # point a client at openai_stub.base_url ("http://127.0.0.1:PORT/v1")
        assert openai_stub.requests[0].body["model"] == "gpt-test"

When the script is empty the stub answers `openai_stub.default` ("stub reply").
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = ["OpenAIStub", "StubRequest", "StubResponse", "openai_stub_fixture"]


@dataclass
class StubResponse:
    """One scripted answer: a reply (text and/or tool calls) or an HTTP error."""

    content: str | None = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """Each `{"id": ..., "name": ..., "arguments": {...}}`."""
    status: int = 200
    error: dict[str, Any] | None = None
    """The `error` object of an error body."""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (to provoke client timeouts)."""


@dataclass
class StubRequest:
    """What the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def bearer(self) -> str | None:
        """The bearer token of the `Authorization` header, if any."""
        value = self.headers.get("authorization", "")
        return value[len("Bearer ") :] if value.startswith("Bearer ") else None


_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


class OpenAIStub:
    """A scripted OpenAI-compatible server on 127.0.0.1; see the module docstring.

    Args:
        chunk_size: Characters of content per streamed delta.
    """

    def __init__(self, *, chunk_size: int = 4) -> None:
        self.chunk_size = chunk_size
        self.default = "stub reply"
        self.requests: list[StubRequest] = []
        self._script: list[StubResponse] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._counter = 0

    @property
    def port(self) -> int:
        """The port the stub listens on."""
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The base URL a client needs, ending in `/v1`."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> OpenAIStub:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scripting --------------------------------------------------------

    def add(self, response: StubResponse) -> None:
        """Append a scripted answer."""
        with self._lock:
            self._script.append(response)

    def add_reply(self, text: str) -> None:
        """Answer the next request with plain text."""
        self.add(StubResponse(content=text))

    def add_tool_call(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        call_id: str | None = None,
        content: str | None = None,
    ) -> None:
        """Answer the next request with one tool call (and optional text)."""
        call_id = call_id or f"call_{len(self._script) + 1}"
        self.add(
            StubResponse(
                content=content,
                tool_calls=[{"id": call_id, "name": name, "arguments": arguments}],
            )
        )

    def add_error(
        self, status: int, message: str | None = None, *, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next request with an HTTP error and an OpenAI-style JSON body."""
        kind, code = _ERROR_TYPES.get(status, ("server_error", "server_error"))
        self.add(
            StubResponse(
                status=status,
                error={"message": message or f"stub error {status}", "type": kind, "code": code},
                headers=headers or {},
            )
        )

    @property
    def pending(self) -> int:
        """Scripted answers not yet served."""
        with self._lock:
            return len(self._script)

    # -- serving ----------------------------------------------------------

    def _record(self, request: StubRequest) -> StubResponse:
        with self._lock:
            self.requests.append(request)
            self._counter += 1
            if self._script:
                return self._script.pop(0)
        return StubResponse(content=self.default)

    def _next_id(self) -> str:
        return f"chatcmpl-stub-{self._counter}"


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out hang up mid-answer; that is what such tests want.
        pass


def _handler_for(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "openai-stub/1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": "gpt-test", "object": "model"}]})
            else:
                self._json(
                    404, {"error": {"message": "not found", "type": "invalid_request_error"}}
                )

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._json(
                    400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}}
                )
                return
            request = StubRequest(
                method="POST",
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            if self.path.rstrip("/") != "/v1/chat/completions":
                with stub._lock:
                    stub.requests.append(request)
                self._json(
                    404, {"error": {"message": "not found", "type": "invalid_request_error"}}
                )
                return
            scripted = stub._record(request)
            if scripted.delay:
                time.sleep(scripted.delay)
            if scripted.status != 200:
                self._json(scripted.status, {"error": scripted.error}, scripted.headers)
                return
            model = str(body.get("model", "gpt-test"))
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                self._stream(scripted, model, include_usage)
            else:
                self._json(200, _completion(stub._next_id(), model, scripted), scripted.headers)

        def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, scripted: StubResponse, model: str, include_usage: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            for chunk in _chunks(stub._next_id(), model, scripted, stub.chunk_size, include_usage):
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler


def _usage(scripted: StubResponse) -> dict[str, int]:
    completion = len((scripted.content or "").split()) + 5 * len(scripted.tool_calls)
    return {"prompt_tokens": 10, "completion_tokens": completion, "total_tokens": 10 + completion}


def _arguments(call: dict[str, Any]) -> str:
    args = call["arguments"]
    return args if isinstance(args, str) else json.dumps(args)


def _completion(completion_id: str, model: str, scripted: StubResponse) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": scripted.content}
    if scripted.tool_calls:
        message["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": _arguments(call)},
            }
            for call in scripted.tool_calls
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if scripted.tool_calls else "stop",
                "logprobs": None,
            }
        ],
        "usage": _usage(scripted),
    }


def _chunks(
    completion_id: str, model: str, scripted: StubResponse, size: int, include_usage: bool
) -> Iterator[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    yield chunk({"role": "assistant", "content": ""})
    text = scripted.content or ""
    for i in range(0, len(text), size):
        yield chunk({"content": text[i : i + size]})
    for index, call in enumerate(scripted.tool_calls):
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": ""},
                    }
                ]
            }
        )
        arguments = _arguments(call)
        for i in range(0, len(arguments), size):
            piece = arguments[i : i + size]
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, "tool_calls" if scripted.tool_calls else "stop")
    if include_usage:
        yield {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [],
            "usage": _usage(scripted),
        }


@pytest.fixture(name="openai_stub")
def openai_stub_fixture() -> Iterator[OpenAIStub]:
    """A running `OpenAIStub` on 127.0.0.1, closed after the test."""
    with OpenAIStub() as stub:
        yield stub
