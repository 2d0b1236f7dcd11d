"""The settings of one ecosystem, each with its environment variable."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def split_path(value: str | None) -> list[Path]:
    """MAD_PATH: folders separated by os.pathsep."""
    return [Path(p) for p in (value or "").split(os.pathsep) if p]


def split_names(value: str | None) -> list[str]:
    """MAD_ISOLATE: names separated by commas (or spaces), without their @."""
    return [n.strip().lstrip("@").lower() for n in (value or "").replace(" ", ",").split(",") if n.strip()]


@dataclass
class Config:
    """Where state lives, where MADs come from, which LLM provider, and the supervisor's limits."""

    home: Path = Path(".mad")
    """MAD_HOME: all MAD state (state/<mad>.db, files/, master.key)."""
    mad_path: list[Path] = field(default_factory=list)
    """MAD_PATH: extra folders of MAD modules."""
    provider: str = "offline"
    """MAD_PROVIDER: offline, scripted, openai or anthropic."""
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    include_package: bool = True
    """Load the MADs of the `mads` package (off for tests that bring their own)."""
    only: list[str] | None = None
    """Run only these MADs."""
    mailbox_size: int = 1000
    mailbox_waiting: int | None = None
    """Messages that may wait in line for room in a full mailbox before more are refused (default 10x the size)."""
    restart_backoff: float = 0.1
    max_crashes: int = 5
    crash_window: float = 60.0
    block_threshold: float = 0.5
    call_timeout: float = 300.0
    watch: bool = False
    """Watch the MAD modules and hot-reload them when they change (`mad run`, `mad mcp`, `mad tui`)."""
    sample_interval: float = 1.0
    """Seconds between `sample` events of resource use; 0 turns sampling off."""
    isolate: list[str] = field(default_factory=list)
    """MAD_ISOLATE: MADs to run in their own limited process whatever their class says (comma-separated)."""
    sandbox: str = "auto"
    """MAD_SANDBOX: `auto` (bubblewrap when installed), `bwrap` (required) or `rlimits` (limits only)."""
    bus: str | None = None
    """MAD_BUS: None for the in-memory bus, or `redis://[:password@]host:port/db` (`rediss://` for TLS)."""
    ecosystem: str = "mad"
    """MAD_ECOSYSTEM: the name of a distributed ecosystem, the prefix of its keys (several share one Redis)."""
    claim_idle: float = 60.0
    """Seconds an inbox entry may stay unacknowledged before another process of its MAD takes it over."""
    default_mad: str = "fiedler"
    """MAD_DEFAULT_MAD: who answers prose addressed to nobody, in a conversation with no MAD in it."""
    context_budget: dict[str, int] = field(default_factory=dict)
    """MAD_CONTEXT_BUDGET: tokens of the Imperator's context, per MAD (`horace=2000`) or for all (`*`)."""
    lppm_min_support: int = 2
    """MAD_LPPM_MIN_SUPPORT: agreeing Imperator resolutions before a learned template answers without the LLM."""
    replace: list[Path] = field(default_factory=list)
    """Module files that take the place of the modules defining the same MADs (`mad rerun --module`, `mad regen`)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Config:
        env = dict(os.environ if environ is None else environ)
        config = cls(
            home=Path(env.get("MAD_HOME") or ".mad"),
            mad_path=split_path(env.get("MAD_PATH")),
            provider=env.get("MAD_PROVIDER") or "offline",
            environ=env,
            isolate=split_names(env.get("MAD_ISOLATE")),
            sandbox=env.get("MAD_SANDBOX") or "auto",
            bus=env.get("MAD_BUS") or None,
            ecosystem=env.get("MAD_ECOSYSTEM") or "mad",
            lppm_min_support=int(env.get("MAD_LPPM_MIN_SUPPORT") or 2),
            default_mad=env.get("MAD_DEFAULT_MAD") or "fiedler",
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(config, key, value)
        return config
