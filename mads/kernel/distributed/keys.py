"""The Redis keys of one ecosystem, all under its name."""
from __future__ import annotations

from dataclasses import dataclass

GROUP = "mads"
"""The one consumer group of every inbox: each process hosting the MAD is a consumer in it."""


@dataclass(frozen=True)
class Keys:
    """Key names under the ecosystem's prefix."""

    prefix: str

    def conversation(self, cid: str) -> str:
        return f"{self.prefix}:conv:{cid}"

    def members(self, cid: str) -> str:
        return f"{self.prefix}:conv:{cid}:members"

    @property
    def conversations(self) -> str:
        return f"{self.prefix}:convs"

    @property
    def participants(self) -> str:
        """External participants (the human, MCP clients): they read no inbox."""
        return f"{self.prefix}:participants"

    @property
    def mads(self) -> str:
        return f"{self.prefix}:mads"

    @property
    def observers(self) -> str:
        return f"{self.prefix}:observers"

    def mad(self, name: str) -> str:
        """A MAD's description (JSON): its class, tools and their schemas."""
        return f"{self.prefix}:mad:{name}"

    def hosts(self, name: str) -> str:
        """The processes hosting a MAD."""
        return f"{self.prefix}:hosts:{name}"

    def node(self, node: str) -> str:
        """A process: host, pid, its MADs and figures; it expires when the process stops heartbeating."""
        return f"{self.prefix}:node:{node}"

    @property
    def nodes(self) -> str:
        return f"{self.prefix}:nodes"

    def inbox(self, name: str) -> str:
        return f"{self.prefix}:inbox:{name}"

    def dead(self, name: str) -> str:
        return f"{self.prefix}:dead:{name}"

    def replies(self, node: str) -> str:
        return f"{self.prefix}:replies:{node}"

    def waiting(self, message_id: str) -> str:
        """Which process waits for replies to a message."""
        return f"{self.prefix}:wait:{message_id}"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def modules(self) -> str:
        """Every module version a process loaded: sha256 -> its source and MADs (JSON)."""
        return f"{self.prefix}:modules"
