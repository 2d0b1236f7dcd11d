"""The kernel of the MAD ecosystem: MADs and their tools, the bus, supervision, cognition.

It never imports textual or madtui: the ecosystem runs headless.
"""
from .bus import Bus, Conversation, InMemoryBus, Mailbox, MailboxFull
from .config import Config
from .context import MADContext
from .ecosystem import DEFAULT_CONVERSATION, HUMAN, Ecosystem
from .errors import ArgumentError, MADUnavailable, MadError, ToolError, UnknownToolError, UsageError
from .events import Event, Record
from .hub import EventHub, ListSink, Redactor
from .isolation import Isolation
from .mad import MAD, ToolSpec, tool
from .message import Message, parse
from .schema import Secret

__all__ = [
    "DEFAULT_CONVERSATION", "HUMAN", "MAD", "ArgumentError", "Bus", "Config", "Conversation", "Ecosystem",
    "Event", "EventHub", "Record", "InMemoryBus", "Isolation", "ListSink", "MADContext", "MADUnavailable", "MadError", "Mailbox",
    "MailboxFull", "Message", "Redactor", "Secret", "ToolError", "ToolSpec", "UnknownToolError",
    "UsageError", "parse", "tool",
]
