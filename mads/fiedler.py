"""Fiedler, the LLM gateway: every MAD's LLM calls, parallel prompts to several models, usage accounts."""
from __future__ import annotations

import asyncio
import copy
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Migrations

from mads.kernel import MAD, ToolError, tool
from mads.kernel.events import LLMCall, LLMResult
from mads.kernel.llm import LLMError, LLMRequest, LLMResponse, Provider, estimate_tokens, make_provider

migrations = Migrations("fiedler")

MAX_FILE_BYTES = 1_000_000
"""The largest file fiedler_send appends to a prompt."""


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
        row = self.ctx.state.execute("select value from settings where key = 'models'").fetchone()
        if row is not None:
            return list(json.loads(row[0]))
        return self._provider.models() if self._provider is not None else []

    # the gateway -----------------------------------------------------------------
    async def complete(self, mad: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                       model: str | None = None) -> LLMResponse:
        """One completion for `mad`, recorded and accounted; ToolError when the provider cannot answer."""
        if not model:
            models = self.models()
            model = models[0] if models else ""
        tools = tools or []
        self.ctx.emit(LLMCall(caller=mad, model=model, messages=len(messages),
                              tools=[t.get("name", "") for t in tools], prompt=copy.deepcopy(messages),
                              context_tokens=sum(estimate_tokens(str(m.get("content") or "")) for m in messages)))
        started = time.perf_counter()
        error: str | None = None
        response: LLMResponse | None = None
        if self._provider is None:
            error = self._error or "no language model provider is running"
        else:
            try:
                response = await self._provider.complete(LLMRequest(mad, model, messages, tools))
            except LLMError as exc:
                error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            except Exception as exc:  # a provider's bug must not crash the calling MAD
                error = f"{self._provider.reported_name} provider failed: {type(exc).__name__}: {exc}".splitlines()[0]
                self.ctx.log.warning("fiedler: %s", error)
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        if response is None:
            self._record(mad, model, 0, 0, 0.0, latency_ms, error)
            self.ctx.emit(LLMResult(caller=mad, model=model, ok=False, error=error, latency_ms=latency_ms))
            raise ToolError(error or "the language model could not answer")
        self._record(mad, model, response.input_tokens, response.output_tokens, response.cost, latency_ms, None)
        self.ctx.emit(LLMResult(caller=mad, model=model, ok=True, input_tokens=response.input_tokens,
                                output_tokens=response.output_tokens, cost=response.cost, latency_ms=latency_ms,
                                tool_calls=[{"id": c.id, "name": c.name, "arguments": c.arguments}
                                            for c in response.tool_calls],
                                text=response.text))
        return response

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
        """The provider, the models prompts go to, and the default model."""
        models = self.models()
        provider = self._provider.reported_name if self._provider is not None else self._provider_name
        result: dict[str, Any] = {"provider": provider, "models": models,
                                  "default": models[0] if models else None}
        if self._error:
            result["error"] = self._error
        return result

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
