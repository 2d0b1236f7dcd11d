"""The one interface every LLM provider implements, and the records of a call."""
from __future__ import annotations

import email.utils
import json
import os
import re
import socket
import ssl
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit


class LLMError(Exception):
    """The provider could not answer (unreachable, refused, script exhausted): a one-line message.

    `retryable` errors (429, 5xx) may be tried again by the gateway, after `retry_after` seconds when the
    server said how long to wait; `status` is the HTTP status when there was one.
    """

    def __init__(self, message: str = "", *, status: int | None = None, retry_after: float | None = None,
                 retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.retryable = retryable


@dataclass
class ToolCall:
    """The model asks for a tool: its name and arguments."""

    name: str
    arguments: dict[str, Any]
    id: str = ""
    error: str = ""
    """Why the arguments could not be read (the model wrote malformed JSON); `arguments` is then empty."""


@dataclass
class LLMRequest:
    """One completion request: the calling MAD, chat messages and the tools on offer."""

    mad: str
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    on_text: Callable[[str], None] | None = field(default=None, repr=False, compare=False)
    """Called with each piece of the reply's text as it streams in (cheap and synchronous); None: no one watches."""


@dataclass
class LLMResponse:
    """What the model said: text, tool calls, and what it cost."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latency: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments, **({"error": c.error} if c.error else {})}
                           for c in self.tool_calls],
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": self.cost,
            "latency_ms": round(self.latency * 1000, 3),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LLMResponse:
        """A response back from `to_dict` (it crossed into an isolated MAD's process)."""
        return cls(text=data.get("text", ""),
                   tool_calls=[ToolCall(c["name"], c.get("arguments") or {}, c.get("id", ""), c.get("error", ""))
                               for c in data.get("tool_calls") or []],
                   model=data.get("model", ""), input_tokens=data.get("input_tokens", 0),
                   output_tokens=data.get("output_tokens", 0), cost=data.get("cost", 0.0),
                   latency=data.get("latency_ms", 0.0) / 1000)


# Dollars per million tokens (input, output) for models whose price is public.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-opus-4-1": (15.00, 75.00),
}


def cost_of(model: str, input_tokens: int, output_tokens: int) -> float:
    """Dollars for a call; 0 for local or unknown models."""
    price = PRICES.get(model)
    if price is None:
        return 0.0
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000


def estimate_tokens(value: Any) -> int:
    """A rough token count (4 characters a token) for providers that report none."""
    return max(1, len(str(value)) // 4)


class Provider(ABC):
    """An LLM backend: lists its models and completes a chat with tools."""

    name: str = ""

    @property
    def reported_name(self) -> str:
        """The provider name tools report (a replay reports the provider it stands in for)."""
        return self.name

    @abstractmethod
    def models(self) -> list[str]: ...

    async def list_models(self) -> list[str]:
        """The models the server offers (asked of it); LLMError when it cannot say."""
        return self.models()

    @abstractmethod
    async def complete(self, request: LLMRequest) -> LLMResponse: ...

    async def close(self) -> None:
        """Release connections."""


# One-line faults, shared by the HTTP providers ------------------------------------------------------------------

CONTEXT_PATTERN = re.compile(r"context[ _]length|context (size|window)|prompt is too long|too many tokens"
                             r"|maximum context|exceeds? the (available )?context", re.IGNORECASE)
"""A server's words for a prompt longer than the model's context (OpenAI, Anthropic, vLLM, llama.cpp, Ollama)."""

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 529})


def one_line(text: object, limit: int = 200) -> str:
    """The first non-blank line of a text, stripped and cut to `limit` characters (… marks a cut)."""
    line = next((part.strip() for part in str(text or "").splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[:limit - 1].rstrip() + "…"


def public_url(url: object) -> str:
    """A URL fit to show: no user:password@ and no query (they may hold a key), no trailing slash."""
    text = str(url or "")
    parts = urlsplit(text)
    if not parts.scheme or not parts.netloc:
        return text.rstrip("/")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", "")).rstrip("/")


def retry_after_of(headers: Any) -> float | None:
    """Seconds the server asks to wait: `retry-after-ms`, else `retry-after` (seconds or an HTTP date)."""
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(0.0, float(millis) / 1000)
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def connection_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words ("connection refused", "timed out", ...), from the cause chain."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    for error in chain:
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, socket.gaierror):
            return "unknown host"
        if isinstance(error, TimeoutError) or "timeout" in type(error).__name__.lower():
            return "timed out"
        if isinstance(error, ConnectionResetError):
            return "connection reset"
        if isinstance(error, ssl.SSLError):
            return f"TLS error: {one_line(error.reason or error, 120)}"
    for error in reversed(chain):
        if isinstance(error, OSError) and error.errno:
            return os.strerror(error.errno).lower()
    innermost = one_line(chain[-1], 120)
    return innermost[:1].lower() + innermost[1:] if innermost else "connection failed"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """The text with each secret (8 characters or more) replaced by ***."""
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, "***")
    return text


def connection_error(provider: str, base_url: str, exc: BaseException) -> LLMError:
    """`openai: cannot reach http://host/v1: connection refused`."""
    return LLMError(f"{provider}: cannot reach {public_url(base_url)}: {connection_reason(exc)}")


def cut_error(provider: str, chunks: int, reason: str = "") -> LLMError:
    """`openai: the stream was cut after N chunks` (not retryable: part of the answer was already shown)."""
    return LLMError(f"{provider}: the stream was cut after {chunks} chunk{'' if chunks == 1 else 's'}"
                    + (f": {reason}" if reason else ""))


def status_error(provider: str, status: int, message: str, *, base_url: str, key_variable: str,
                 model: str | None = None, code: str | None = None, headers: Any = None,
                 reason: str = "", secrets: Iterable[str | None] = ()) -> LLMError:
    """The one-line LLMError for an HTTP error answer.

    `message` is the server's own words (error.message of its body), `code` its error code, `model` the model asked
    for (None when listing models), `reason` the HTTP reason phrase for a body that says nothing.
    """
    said = one_line(message)
    url = public_url(base_url)
    retry_after = retry_after_of(headers)
    retryable = status in RETRYABLE_STATUSES or status >= 500
    if status in (401, 403):
        text = f"{provider}: {status} {'unauthorized' if status == 401 else 'forbidden'} at {url}: check {key_variable}"
    elif status == 404 and model is not None and (code == "model_not_found" or "model" in said.lower()):
        text = f"{provider}: model {model!r} not found at {url} (404)"
    elif status == 429 and code == "insufficient_quota":
        text, retryable = f"{provider}: out of quota (429): {said}", False
    elif status == 429:
        text = f"{provider}: rate limited (429)"
    elif retryable:
        text = f"{provider}: server error {status}" + (f": {said}" if said else "")
    elif status in (400, 413) and (code == "context_length_exceeded" or CONTEXT_PATTERN.search(said)):
        text = f"{provider}: the prompt is too long for model {model!r}: {one_line(said, 120)}"
    else:
        text = f"{provider}: {status} {said}" if said else f"{provider}: {status} {reason or 'error'} at {url}"
    return LLMError(redact(text, secrets), status=status, retry_after=retry_after, retryable=retryable)


def invalid_arguments(raw: str) -> str:
    """ToolCall.error for arguments that are not JSON: the parser's complaint and the raw text (≤ 80 characters)."""
    shown = " ".join(raw.split())
    shown = shown if len(shown) <= 80 else shown[:79] + "…"
    try:
        json.loads(raw)
    except json.JSONDecodeError as exc:
        return f"arguments are not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno}): {shown}"
    return f"arguments are not a JSON object: {shown}"


def parse_arguments(raw: str | None) -> tuple[dict[str, Any], str]:
    """A tool call's arguments from their JSON text: (arguments, "") or ({}, the ToolCall.error)."""
    if not raw or not raw.strip():
        return {}, ""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {}, invalid_arguments(raw)
    if not isinstance(value, dict):
        return {}, invalid_arguments(raw)
    return value, ""
