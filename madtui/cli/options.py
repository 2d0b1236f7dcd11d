"""Options shared by every command that starts an ecosystem, and the one-line error convention."""
from __future__ import annotations

import asyncio
import functools
import logging
import os
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
        text = str(value).strip().lstrip("@").lower()
        if not text or not text.replace("_", "").replace("-", "").isalnum():
            self.fail(f"{value!r} is not a MAD name", param, ctx)
        return text


isolate_option = click.option(
    "--isolate", "isolate", type=NameList(), multiple=True, envvar="MAD_ISOLATE", show_envvar=True,
    help="Run this MAD in its own limited process (repeatable; MAD_ISOLATE takes a comma-separated list).")

provider_option = click.option(
    "--provider", type=click.Choice(PROVIDERS), envvar="MAD_PROVIDER", default="offline", show_default=True,
    show_envvar=True, help="LLM provider (replay needs MAD_REPLAY_JOURNAL).")


def ecosystem_options(fn: F) -> F:
    """--home, --mad-path, --provider, --isolate, --sessions, --no-record and --debug; each setting has its variable."""
    options = [
        click.option("--home", type=click.Path(file_okay=False, path_type=Path), envvar="MAD_HOME",
                     default=".mad", show_default=True, show_envvar=True, help="Folder of all MAD state."),
        click.option("--mad-path", "mad_path", type=PathList(file_okay=False, path_type=Path), multiple=True,
                     envvar="MAD_PATH", show_envvar=True, help="Extra folder of MAD modules (repeatable)."),
        provider_option,
        isolate_option,
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
                  isolate=list(isolate), sandbox=os.environ.get("MAD_SANDBOX") or "auto", **overrides)


@dataclass
class EcosystemOptions:
    """The shared options of one command, gathered."""

    home: Path
    mad_path: tuple[Path, ...]
    provider: str
    isolate: tuple[str, ...]
    sessions: Path
    no_record: bool
    debug: bool

    def ecosystem(self, **overrides: Any) -> Ecosystem:
        eco = Ecosystem(make_config(self.home, self.mad_path, self.provider, self.isolate, **overrides))
        setup_logging(self.debug, eco)
        return eco

    def record(self, eco: Ecosystem, command: str, *, journal: Path | None = None,
               capture_stdout: bool = False) -> AbstractContextManager[Recording | None]:
        """Record the session into --sessions (unless --no-record), or append to a given journal."""
        sessions = None if self.no_record else self.sessions
        return record_session(eco, sessions, journal=journal, argv=sys.argv, command=command,
                              capture_stdout=capture_stdout)


def gather(kwargs: dict[str, Any]) -> EcosystemOptions:
    """Take the shared options out of a command's keyword arguments."""
    return EcosystemOptions(*(kwargs.pop(name) for name in
                              ("home", "mad_path", "provider", "isolate", "sessions", "no_record", "debug")))


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
