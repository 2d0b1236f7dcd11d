"""Options shared by every command that starts an ecosystem, and the one-line error convention."""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from mads.kernel import Config, Ecosystem, MadError
from mads.kernel.hub import RedactingFilter
from mads.kernel.llm import PROVIDERS
from mads.kernel.journal import Recording, record_session

F = TypeVar("F", bound=Callable[..., Any])


class PathList(click.Path):
    """A repeatable folder option whose environment variable is os.pathsep-separated."""

    envvar_list_splitter = os.pathsep


class NameList(click.ParamType):
    """A repeatable MAD name option whose environment variable is comma-separated (MAD_ISOLATE=horace,probe)."""

    name = "NAME"
    envvar_list_splitter = ","

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """One name, or several separated by commas (`--mads rogers,dewey`); kept as one text, split by `names`."""
        parts = [part.strip().lstrip("@").lower() for part in str(value).split(",")]
        for part in parts:
            if not part or not part.replace("_", "").replace("-", "").isalnum():
                self.fail(f"{part or value!r} is not a MAD name", param, ctx)
        return ",".join(parts)


class Budget(click.ParamType):
    """A context budget in tokens, for every MAD (`3000`) or one (`horace=2000`); MAD_CONTEXT_BUDGET is comma-separated."""

    name = "[MAD=]TOKENS"
    envvar_list_splitter = ","

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value
        mad, _, tokens = str(value).strip().rpartition("=")
        try:
            amount = int(tokens)
        except ValueError:
            amount = 0
        if amount < 100 or (mad and not mad.replace("_", "").replace("-", "").isalnum()):
            self.fail(f"{value!r} is not a budget: TOKENS (at least 100) or MAD=TOKENS", param, ctx)
        return (mad.lower().lstrip("@") or "*", amount)


def names_of(values: tuple[str, ...]) -> tuple[str, ...]:
    """The names of a NameList option, commas split."""
    return tuple(dict.fromkeys(part for value in values for part in value.split(",")))


isolate_option = click.option(
    "--isolate", "isolate", type=NameList(), multiple=True, envvar="MAD_ISOLATE", show_envvar=True,
    help="Run this MAD in its own limited process (repeatable; MAD_ISOLATE takes a comma-separated list).")

provider_option = click.option(
    "--provider", type=click.Choice(PROVIDERS), envvar="MAD_PROVIDER", default="offline", show_default=True,
    show_envvar=True, help="LLM provider (replay needs MAD_REPLAY_JOURNAL).")


bus_options = [
    click.option("--bus", envvar="MAD_BUS", show_envvar=True, metavar="URL",
                 help="Distributed bus: redis://[:password@]host:port/db (rediss:// for TLS); default in memory."),
    click.option("--mads", "mads", type=NameList(), multiple=True, envvar="MAD_MADS", show_envvar=True,
                 help="The MADs this process hosts (repeatable or comma-separated; with --bus, "
                      "`mad run` hosts all by default and the other commands none)."),
    click.option("--ecosystem", "ecosystem_name", envvar="MAD_ECOSYSTEM", default="mad", show_default=True,
                 show_envvar=True, help="The distributed ecosystem's name (several share one Redis)."),
    click.option("--claim-idle", "claim_idle", type=click.FloatRange(min=0.1), envvar="MAD_CLAIM_IDLE",
                 default=60.0, show_default=True, show_envvar=True, metavar="SECONDS",
                 help="Take over a dead process's unanswered inbox entries after this many idle seconds."),
]
timeout_option = click.option(
    "--timeout", "call_timeout", type=click.FloatRange(min=0.01), envvar="MAD_TIMEOUT", default=300.0,
    show_default=True, show_envvar=True, metavar="SECONDS",
    help="How long a tool call may wait for its MAD (with --bus: for a process hosting it).")


def ecosystem_options(fn: F | None = None, *, timeout: bool = True) -> Any:
    """--home, --mad-path, --provider, --isolate, the bus options, --sessions, --no-record and --debug."""
    if fn is None:
        return functools.partial(ecosystem_options, timeout=timeout)
    options = [
        click.option("--home", type=click.Path(file_okay=False, path_type=Path), envvar="MAD_HOME",
                     default=".mad", show_default=True, show_envvar=True, help="Folder of all MAD state."),
        click.option("--mad-path", "mad_path", type=PathList(file_okay=False, path_type=Path), multiple=True,
                     envvar="MAD_PATH", show_envvar=True, help="Extra folder of MAD modules (repeatable)."),
        provider_option,
        isolate_option,
        *bus_options,
        *([timeout_option] if timeout else []),
        click.option("--context-budget", "context_budget", type=Budget(), multiple=True, envvar="MAD_CONTEXT_BUDGET",
                     show_envvar=True, help="Tokens of the Imperator's context (CET), for all MADs or MAD=TOKENS "
                                            "(repeatable; default 3000)."),
        click.option("--default-mad", "default_mad", type=NameList(), envvar="MAD_DEFAULT_MAD", default="fiedler",
                     show_default=True, show_envvar=True,
                     help="Who answers prose addressed to nobody in a conversation with no MAD in it."),
        click.option("--lppm-min-support", "lppm_min_support", type=click.IntRange(min=1), default=2,
                     envvar="MAD_LPPM_MIN_SUPPORT", show_default=True, show_envvar=True,
                     help="Agreeing Imperator resolutions before LPPM answers a phrasing without the LLM."),
        click.option("--sessions", type=click.Path(file_okay=False, path_type=Path), envvar="MAD_SESSIONS",
                     default="sessions", show_default=True, show_envvar=True,
                     help="Folder of session recordings."),
        click.option("--no-record", is_flag=True, help="Do not record this session."),
        click.option("--debug", is_flag=True, help="Show tracebacks and debug logs."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def watch_option(fn: F) -> F:
    """--no-watch: do not hot-reload MAD modules when their files change."""
    return click.option("--no-watch", is_flag=True, help="Do not hot-reload MAD modules when they change.")(fn)


def make_config(home: Path, mad_path: tuple[Path, ...], provider: str, isolate: tuple[str, ...] = (),
                **overrides: Any) -> Config:
    """The ecosystem's settings from the shared options (already merged with the environment)."""
    return Config(home=home, mad_path=list(mad_path), provider=provider, environ=dict(os.environ),
                  isolate=list(isolate), sandbox=os.environ.get("MAD_SANDBOX") or "auto",
                  **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class EcosystemOptions:
    """The shared options of one command, gathered."""

    home: Path
    mad_path: tuple[Path, ...]
    provider: str
    isolate: tuple[str, ...]
    bus: str | None
    mads: tuple[str, ...]
    ecosystem_name: str
    claim_idle: float
    sessions: Path
    no_record: bool
    debug: bool
    call_timeout: float | None = None
    context_budget: tuple[tuple[str, int], ...] = ()
    lppm_min_support: int = 2
    default_mad: str = "fiedler"

    def ecosystem(self, *, host_all: bool = False, **overrides: Any) -> Ecosystem:
        """The command's ecosystem. With --bus it hosts the --mads (`host_all`: every MAD, unless --mads)."""
        hosted: list[str] | None = list(self.mads) if self.mads else None
        if self.bus and hosted is None and not host_all:
            hosted = []  # attached: it calls the others' MADs and hosts none
        eco = Ecosystem(make_config(self.home, self.mad_path, self.provider, self.isolate, bus=self.bus,
                                    ecosystem=self.ecosystem_name, claim_idle=self.claim_idle, only=hosted,
                                    call_timeout=self.call_timeout, context_budget=dict(self.context_budget),
                                    lppm_min_support=self.lppm_min_support, default_mad=self.default_mad,
                                    **overrides))
        setup_logging(self.debug, eco)
        return eco

    def record(self, eco: Ecosystem, command: str, *, journal: Path | None = None,
               capture_stdout: bool = False) -> AbstractContextManager[Recording | None]:
        """Record the session into --sessions (unless --no-record), or append to a given journal.

        With --bus only the recording commands record (`mad record`, `mad mcp`, `mad tui`): each writes
        every process's events, so the others (`run`, `call`, `send`) leave theirs to them.
        """
        recording = command in ("record", "mcp", "tui") or not self.bus
        sessions = None if self.no_record or not recording else self.sessions
        return record_session(eco, sessions, journal=journal, argv=sys.argv, command=command,
                              capture_stdout=capture_stdout)


def gather(kwargs: dict[str, Any]) -> EcosystemOptions:
    """Take the shared options out of a command's keyword arguments."""
    fields = ("home", "mad_path", "provider", "isolate", "bus", "mads", "ecosystem_name", "claim_idle", "sessions",
              "no_record", "debug")
    options = EcosystemOptions(**{name: kwargs.pop(name) for name in fields},
                               call_timeout=kwargs.pop("call_timeout", None),
                               context_budget=tuple(kwargs.pop("context_budget", ())),
                               lppm_min_support=kwargs.pop("lppm_min_support", 2),
                               default_mad=kwargs.pop("default_mad", "fiedler"))
    options.isolate, options.mads = names_of(options.isolate), names_of(options.mads)
    return options


def setup_logging(debug: bool, ecosystem: Ecosystem | None = None) -> None:
    """Warnings and errors as one line each on stderr (debug: everything); secrets redacted."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_mad", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._mad = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("mad: %(name)s: %(message)s"))
    if ecosystem is not None:
        handler.addFilter(RedactingFilter(ecosystem.hub.redactor))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)


def fail(message: str, code: int) -> None:
    """One line on stderr and the exit code."""
    click.echo(f"mad: error: {message}", err=True)
    sys.exit(code)


def run_async(coro_fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Run an async command body; MadError becomes one line and its exit code (2 usage, 1 otherwise)."""

    @functools.wraps(coro_fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = kwargs.get("debug", False)
        try:
            return asyncio.run(coro_fn(*args, **kwargs))
        except MadError as exc:
            if debug:
                raise
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            sys.exit(130)
        except Exception as exc:
            if debug:
                raise
            fail(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)", 1)

    return wrapper


def run_sync(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A plain command body whose MadError becomes one line and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MadError as exc:
            fail(str(exc), exc.exit_code)
        except Exception as exc:  # a bug or an unforeseen failure: still one line, the traceback on demand
            if os.environ.get("MAD_DEBUG"):
                raise
            fail(f"{type(exc).__name__}: {exc} (MAD_DEBUG=1 shows the traceback)", 1)

    return wrapper


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (Ctrl-C, `kill`): a long-running command waits on it to stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop
