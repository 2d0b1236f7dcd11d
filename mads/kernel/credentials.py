"""Keys: read from the environment once at start, taken out of it, and handed only to their keepers.

The master key goes to Turing, the provider's keys to Fiedler's provider, and to nobody else:
no MAD's context exposes the environment, and `os.environ` no longer holds them. In-process
MADs are trusted code all the same (they share the process and its memory); the wall against
an untrusted MAD is its own process (isolation), which never receives a key.
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import MadError

MASTER_KEY = "MAD_MASTER_KEY"
KEEPERS = {"turing": "master_key", "fiedler": "provider"}
"""The package MADs that hold keys, and which."""


def is_key_name(name: str) -> bool:
    """True for the variables the kernel takes away: MAD_MASTER_KEY and every *_API_KEY."""
    return name == MASTER_KEY or name.upper().endswith("_API_KEY")


@dataclass(frozen=True)
class Credentials:
    """The keys of one ecosystem; what a keeper receives holds only its own part."""

    master_key: str | None = None
    provider: str = "offline"
    provider_environ: Mapping[str, str] = field(default_factory=dict)
    """What the LLM provider is configured from: its keys, base URL, model, script."""

    def __repr__(self) -> str:  # never in a traceback or a log
        return f"Credentials(provider={self.provider!r}, master_key={'set' if self.master_key else 'unset'})"


def take_credentials(environ: MutableMapping[str, str], provider: str) -> Credentials:
    """The keys of `environ`, removed from it and from os.environ; the provider's settings kept for it."""
    credentials = Credentials(
        master_key=environ.get(MASTER_KEY) or None,
        provider=provider,
        provider_environ={k: v for k, v in environ.items() if k != MASTER_KEY},
    )
    for name in [n for n in environ if is_key_name(n)]:
        del environ[name]
    for name in [n for n in os.environ if is_key_name(n)]:
        del os.environ[name]
    return credentials


def package_folder() -> Path:
    import mads

    return Path(mads.__file__).resolve().parent


def is_package_mad(cls: type[Any]) -> bool:
    """True for a MAD defined in a module of the `mads` package itself (trusted code), not MAD_PATH."""
    try:
        path = Path(inspect.getfile(cls)).resolve()
    except (TypeError, OSError):
        return False
    folder = package_folder()
    return path.parent == folder


def keeper_part(credentials: Credentials, cls: type[Any]) -> Credentials:
    """The part of the keys this MAD keeps; MadError for a MAD that keeps none."""
    role = KEEPERS.get(getattr(cls, "name", "")) if is_package_mad(cls) else None
    if role == "master_key":
        return Credentials(master_key=credentials.master_key, provider=credentials.provider)
    if role == "provider":
        return Credentials(provider=credentials.provider, provider_environ=credentials.provider_environ)
    raise MadError(f"{getattr(cls, 'name', cls)} holds no keys: only Turing and Fiedler of the mads package do")
