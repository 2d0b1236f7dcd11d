"""A bus URL: `redis://[:password@]host:port/db` or `rediss://` (TLS); shown without its password."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import UsageError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class BusAddress:
    """Where the ecosystem's Redis is, and the ecosystem's name (its keys' prefix)."""

    url: str
    ecosystem: str = "mad"

    @property
    def shown(self) -> str:
        """The URL with any password replaced: safe for errors, logs and the journal."""
        parts = urlsplit(self.url)
        if parts.password is None and parts.username is None:
            return self.url
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://***@{host}{port}{parts.path}"


def parse_bus(url: str | None, ecosystem: str = "mad") -> BusAddress | None:
    """None for the in-memory bus (no URL, or `memory`); UsageError (exit 2) for a URL that is not Redis."""
    if not url or url == "memory":
        return None
    if not _NAME.match(ecosystem or ""):
        raise UsageError(f"--ecosystem must be a name of letters, digits, _ . - (got {ecosystem!r})")
    expected = "expected redis://[:password@]host:port/db or rediss://... (TLS)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"--bus: {expected}, got a URL with {exc}") from None
    shown = BusAddress(url).shown if parts.scheme in ("redis", "rediss") else url
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise UsageError(f"--bus: {expected}, got {shown!r}")
    database = parts.path.lstrip("/")
    if database and not database.isdigit():
        raise UsageError(f"--bus: the database must be a number, got {shown!r}")
    if port is None and ":" in (parts.netloc.rsplit("@", 1)[-1]):
        raise UsageError(f"--bus: {expected}, got {shown!r}")
    return BusAddress(url, ecosystem)
