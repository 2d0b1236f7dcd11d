"""Fiedler, the LLM gateway: every MAD's LLM calls, parallel prompts to several models, usage accounts."""
from __future__ import annotations

import asyncio
import copy
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Migrations

from mads.kernel import MAD, ToolError, tool
from mads.kernel.events import LLMCall, LLMCancelled, LLMChunk, LLMResult, LLMRetry
from mads.kernel.llm import LLMError, LLMRequest, LLMResponse, Provider, estimate_tokens, make_provider

migrations = Migrations("fiedler")

MAX_FILE_BYTES = 1_000_000
"""The largest file fiedler_send appends to a prompt."""
RETRIES = 3
"""How many times a call the provider refused for now (429, 5xx) is asked again."""
BACKOFF_S = 0.5
"""The first wait before asking again when the server did not say how long (doubled each time)."""
MAX_WAIT_S = 60.0
"""The longest wait before asking again, whatever the server says."""
LIST_MODELS_TIMEOUT_S = 10.0


def _said(exc: BaseException, otherwise: str) -> str:
    """The first line of what an error says (`otherwise` when it says nothing)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else otherwise


@dataclass(eq=False)
class InFlight:
    """An LLM call on its way: who asked, which model, since when, how much has streamed in."""

    call: int
    caller: str
    model: str
    started: float
    """time.perf_counter() at the request."""
    chunks: int = 0
    first: float | None = None
    """time.perf_counter() at the first piece of text."""
    retries: int = 0
    task: asyncio.Future[LLMResponse] | None = None
    cancelled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"call": self.call, "mad": self.caller, "model": self.model, "chunks": self.chunks,
                "retries": self.retries, "elapsed_s": round(time.perf_counter() - self.started, 3)}


@migrations()
def m001_create_tables(db: Any) -> None:
    db["calls"].create({
        "id": int, "time": float, "mad": str, "model": str, "input_tokens": int, "output_tokens": int,
        "cost": float, "latency_ms": float, "ok": int, "error": str,
    }, pk="id")
    db["calls"].create_index(["mad", "model"])
    db["calls"].create_index(["time"])
    db["settings"].create({"key": str, "value": str}, pk="key")


def parse_since(since: float | str | None) -> float | None:
    """A time given as epoch seconds or ISO 8601 text, as epoch seconds; ToolError when unreadable."""
    if since is None or since == "":
        return None
    if isinstance(since, (int, float)):
        return float(since)
    try:
        return float(since)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(since).timestamp()
    except ValueError:
        raise ToolError(f"since: expected epoch seconds or an ISO 8601 time, got {since!r}") from None


class Fiedler(MAD):
    """The LLM gateway: every MAD's LLM calls go through it; it sends one prompt to several models
    in parallel and keeps token, cost and latency accounts per MAD and per model."""

    migrations = migrations
    home_folders = ("files",)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._provider: Provider | None = None
        self._provider_name = "offline"
        self._error: str | None = None
        self._stages: dict[tuple[str, str], list[int]] = {}
        """(mad, stage) -> [answers, llm_calls, tokens, tokens_avoided] since this start."""
        self._calls = 0
        self.in_flight: dict[int, InFlight] = {}
        """The calls waiting for their answer, by number."""

    async def on_start(self) -> None:
        keys = self.ctx.credentials()
        name = self._provider_name = keys.provider
        try:
            self._provider = make_provider(name, keys.provider_environ)
        except LLMError as exc:
            self._error = f"the {name!r} provider is not available: {exc}"
            self.ctx.log.warning("fiedler: %s", self._error)
        self.ctx.provide("llm", self)

    async def on_stop(self) -> None:
        provider, self._provider = self._provider, None
        if provider is not None:
            try:
                await provider.close()
            except Exception as exc:  # closing connections must never stop the ecosystem
                self.ctx.log.warning("fiedler: closing the provider failed: %s", exc)

    # settings ------------------------------------------------------------------
    def models(self) -> list[str]:
        """The configured models (fiedler_set_models), else the provider's own list."""
        configured = self._configured()
        if configured is not None:
            return configured
        return self._provider.models() if self._provider is not None else []

    # the gateway -----------------------------------------------------------------
    async def complete(self, mad: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                       model: str | None = None) -> LLMResponse:
        """One completion for `mad`, streamed, recorded and accounted; ToolError when the provider cannot answer
        (`cancelled` when `cancel` stopped it)."""
        if not model:
            models = self.models()
            model = models[0] if models else ""
        tools = tools or []
        self._calls += 1
        flight = InFlight(self._calls, mad, model, time.perf_counter())
        self.ctx.emit(LLMCall(caller=mad, model=model, messages=len(messages),
                              tools=[t.get("name", "") for t in tools], prompt=copy.deepcopy(messages),
                              context_tokens=sum(estimate_tokens(str(m.get("content") or "")) for m in messages),
                              call=flight.call))

        def streamed(piece: str) -> None:
            if not piece:
                return
            flight.chunks += 1
            if flight.first is None:
                flight.first = time.perf_counter()
            self.ctx.emit(LLMChunk(caller=mad, call=flight.call, text=piece, n=flight.chunks))

        error: str | None = None
        response: LLMResponse | None = None
        if self._provider is None:
            error = self._error or "no language model provider is running"
        else:
            self.in_flight[flight.call] = flight
            flight.task = asyncio.ensure_future(self._ask_provider(flight, LLMRequest(mad, model, messages, tools,
                                                                                      on_text=streamed)))
            try:
                response = await flight.task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not flight.cancelled or (current is not None and current.cancelling()):
                    raise  # the caller itself goes (shutdown, its own cancel): not ours to answer
                error = "cancelled"
            except LLMError as exc:
                error = _said(exc, type(exc).__name__)
                if flight.retries:
                    error += f" (gave up after {flight.retries + 1} tries)"
            except Exception as exc:  # a provider's bug must not crash the calling MAD
                error = f"{self._provider.reported_name} provider failed: {type(exc).__name__}: {exc}".splitlines()[0]
                self.ctx.log.warning("fiedler: %s", error)
            finally:
                self.in_flight.pop(flight.call, None)
        ended = time.perf_counter()
        latency_ms = round((ended - flight.started) * 1000, 3)
        if response is None:
            self._record(mad, model, 0, 0, 0.0, latency_ms, error)
            if error == "cancelled":
                self.ctx.emit(LLMCancelled(caller=mad, call=flight.call, model=model, elapsed_ms=latency_ms,
                                           chunks=flight.chunks))
            self.ctx.emit(LLMResult(caller=mad, model=model, ok=False, error=error, latency_ms=latency_ms,
                                    call=flight.call, **self._stream_figures(flight, 0, ended)))
            raise ToolError(error or "the language model could not answer")
        self._record(mad, model, response.input_tokens, response.output_tokens, response.cost, latency_ms, None)
        self.ctx.emit(LLMResult(caller=mad, model=model, ok=True, input_tokens=response.input_tokens,
                                output_tokens=response.output_tokens, cost=response.cost, latency_ms=latency_ms,
                                tool_calls=[{"id": c.id, "name": c.name, "arguments": c.arguments}
                                            for c in response.tool_calls],
                                text=response.text, call=flight.call,
                                **self._stream_figures(flight, response.output_tokens, ended)))
        return response

    @staticmethod
    def _stream_figures(flight: InFlight, tokens_out: int, ended: float) -> dict[str, Any]:
        figures: dict[str, Any] = {"retries": flight.retries} if flight.retries else {}
        if flight.first is not None:
            figures["first_token_ms"] = round((flight.first - flight.started) * 1000, 3)
            figures["chunks"] = flight.chunks
            if tokens_out and ended > flight.first:
                figures["tokens_per_s"] = round(tokens_out / (ended - flight.first), 1)
        return figures

    async def _ask_provider(self, flight: InFlight, request: LLMRequest) -> LLMResponse:
        """The provider's answer; a refusal for now (429, 5xx) is asked again after the wait the server gave,
        or a doubling backoff, shown as an llm_retry event. Nothing is asked again once text has streamed."""
        assert self._provider is not None
        while True:
            try:
                return await self._provider.complete(request)
            except LLMError as exc:
                if not exc.retryable or flight.retries >= RETRIES or flight.chunks:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else BACKOFF_S * 2 ** flight.retries
                wait = min(max(float(wait), 0.0), MAX_WAIT_S)
                flight.retries += 1
                self.ctx.emit(LLMRetry(caller=flight.caller, call=flight.call, model=flight.model,
                                       error=_said(exc, "refused"),
                                       wait_s=round(wait, 3), attempt=flight.retries + 1))
                await asyncio.sleep(wait)

    def cancel(self, mad: str | None = None) -> list[dict[str, Any]]:
        """Cancel the calls in flight of `mad` (every MAD's when None), down to their HTTP requests; each
        caller gets ToolError('cancelled'). Returns the calls cancelled."""
        wanted = mad.lower().lstrip("@") if mad else None
        cancelled = []
        for flight in list(self.in_flight.values()):
            if wanted is not None and flight.caller != wanted:
                continue
            if flight.task is not None and not flight.task.done() and not flight.cancelled:
                flight.cancelled = True
                flight.task.cancel()
                cancelled.append(flight.to_dict())
        return cancelled

    def note_stage(self, mad: str, stage: str, llm_calls: int, tokens: int, tokens_avoided: int) -> None:
        """A Thought Engine stage answered a message of `mad` (counted in memory: DTR answers in microseconds)."""
        figures = self._stages.setdefault((mad, stage), [0, 0, 0, 0])
        figures[0] += 1
        figures[1] += llm_calls
        figures[2] += tokens
        figures[3] += tokens_avoided

    def _record(self, mad: str, model: str, tokens_in: int, tokens_out: int, cost: float,
                latency_ms: float, error: str | None) -> None:
        self.ctx.state.table("calls").insert({
            "time": time.time(), "mad": mad, "model": model, "input_tokens": tokens_in,
            "output_tokens": tokens_out, "cost": cost, "latency_ms": latency_ms,
            "ok": int(error is None), "error": error,
        })

    # tools -------------------------------------------------------------------------
    @tool
    async def list_models(self) -> dict[str, Any]:
        """The models the provider's server offers (asked of it: /v1/models for OpenAI-compatible servers and
        Ollama, Anthropic's model list), the models prompts go to, and the default model.

        When the server cannot say, `models` falls back to the configured default and `note` says why.
        """
        configured = self._configured()
        served: list[str] | None = None
        note: str | None = None
        if self._provider is not None:
            try:
                served = await asyncio.wait_for(self._provider.list_models(), LIST_MODELS_TIMEOUT_S)
            except (LLMError, TimeoutError) as exc:
                reason = _said(exc, "no answer in time")
                note = f"the server could not list its models ({reason}): showing the configured default"
        default_models = configured or self.models()
        models = configured or served or default_models
        provider = self._provider.reported_name if self._provider is not None else self._provider_name
        result: dict[str, Any] = {"provider": provider, "models": models,
                                  "default": default_models[0] if default_models else None}
        if served is not None and served != models:
            result["served"] = served
        if note:
            result["note"] = note
        if self._error:
            result["error"] = self._error
        return result

    def _configured(self) -> list[str] | None:
        row = self.ctx.state.execute("select value from settings where key = 'models'").fetchone()
        return list(json.loads(row[0])) if row is not None else None

    @tool
    async def set_models(self, models: list[str]) -> dict[str, Any]:
        """Set the models prompts go to; the first is the default for every MAD."""
        cleaned = list(dict.fromkeys(m.strip() for m in models if m.strip()))
        if not cleaned:
            raise ToolError("give at least one model name")
        self.ctx.state.table("settings").upsert({"key": "models", "value": json.dumps(cleaned)}, pk="key")
        return {"models": cleaned, "default": cleaned[0]}

    @tool
    async def send(self, prompt: str, models: list[str] | None = None,
                   files: list[str] | None = None) -> list[dict[str, Any]]:
        """Send one prompt to several models in parallel and return every answer.

        `files` are paths under MAD_HOME/files whose text is appended to the prompt.
        """
        if not prompt.strip():
            raise ToolError("the prompt is empty")
        chosen = list(dict.fromkeys(m.strip() for m in (models or self.models()) if m.strip()))
        if not chosen:
            raise ToolError("no model to send to: give models or set them with fiedler_set_models")
        content = prompt + "".join(f"\n\n--- {path} ---\n{text}" for path, text in self._read_files(files or []))
        messages = [{"role": "user", "content": content}]
        return list(await asyncio.gather(*(self._ask(model, messages) for model in chosen)))

    async def _ask(self, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            response = await self.complete(self.name, messages, model=model)
        except ToolError as exc:
            return {"model": model, "text": "", "input_tokens": 0, "output_tokens": 0, "cost": 0.0,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3), "error": str(exc)}
        return {"model": model, "text": response.text, "input_tokens": response.input_tokens,
                "output_tokens": response.output_tokens, "cost": response.cost,
                "latency_ms": round((time.perf_counter() - started) * 1000, 3), "error": None}

    def _read_files(self, paths: list[str]) -> list[tuple[str, str]]:
        root = (Path(self.ctx.home) / "files").resolve()
        out = []
        for path in paths:
            target = (root / path).resolve()
            if not target.is_relative_to(root):
                raise ToolError(f"{path}: outside the files folder")
            if not target.is_file():
                raise ToolError(f"{path}: no such file under the files folder")
            if target.stat().st_size > MAX_FILE_BYTES:
                raise ToolError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
            try:
                out.append((path, target.read_text(encoding="utf-8")))
            except UnicodeDecodeError:
                raise ToolError(f"{path}: not UTF-8 text") from None
        return out

    @tool
    async def get_usage(self, mad: str | None = None, model: str | None = None,
                        since: float | str | None = None) -> dict[str, Any]:
        """Calls, tokens, cost and mean latency, in total and per MAD and model; and per MAD and Thought Engine
        stage (dtr, lppm, imperator) since this start, the tokens used and the tokens avoided.

        `since` is epoch seconds or an ISO 8601 time (it filters the calls).
        """
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if mad:
            where.append("mad = ?")
            params.append(mad.lower().lstrip("@"))
        if model:
            where.append("model = ?")
            params.append(model)
        start = parse_since(since)
        if start is not None:
            where.append("time >= ?")
            params.append(start)
        figures = ("count(*) as calls, coalesce(sum(input_tokens), 0) as input_tokens, "
                   "coalesce(sum(output_tokens), 0) as output_tokens, coalesce(sum(cost), 0.0) as cost, "
                   "coalesce(round(avg(latency_ms), 3), 0.0) as mean_latency_ms, "
                   "coalesce(sum(1 - ok), 0) as errors")
        clause = " and ".join(where)
        rows = list(self.ctx.state.query(
            f"select mad, model, {figures} from calls where {clause} group by mad, model order by mad, model",
            params))
        totals = next(self.ctx.state.query(f"select {figures} from calls where {clause}", params))
        wanted = mad.lower().lstrip("@") if mad else None
        stages = [{"mad": m, "stage": stage, "answers": f[0], "llm_calls": f[1], "tokens": f[2], "tokens_avoided": f[3]}
                  for (m, stage), f in sorted(self._stages.items()) if wanted is None or m == wanted]
        return {"totals": totals, "rows": rows, "stages": stages,
                "tokens_avoided": sum(s["tokens_avoided"] for s in stages)}
