"""MAD CP messages: the Message record and the pure parser that reads mentions, tags and commands.

The parser never raises: any text is a valid message, at worst prose.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["deterministic", "fixed", "prose"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_last_ms = 0
_last_rand = 0

_MENTION = re.compile(r"(?<![\w@.])@([A-Za-z][\w-]*)")
_TAG = re.compile(r"(?<![\w#&])#([A-Za-z][\w-]*)")
_URL = re.compile(r"\b(?:https?|file)://[^\s<>\"']+")
_PATH = re.compile(r"(?<![\w@#=:/])(?:\.{0,2}/)?(?:[\w.-]+/)+[\w.-]+\.\w{1,8}\b")
_COMMAND_HEAD = re.compile(r"^\s*@([A-Za-z][\w-]*)[:,]?\s+([A-Za-z_]\w*)(?:\s+|$)(.*)$", re.S)
_KEY = re.compile(r"^[A-Za-z_][\w-]*$")


def new_id() -> str:
    """A 26-character ULID: sortable by creation time, unique within the process."""
    global _last_ms, _last_rand
    ms = time.time_ns() // 1_000_000
    if ms <= _last_ms:
        ms = _last_ms
        _last_rand = (_last_rand + 1) & ((1 << 80) - 1)
    else:
        _last_ms = ms
        _last_rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | _last_rand
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


@dataclass(slots=True)
class Command:
    """A deterministic command: `@Mad tool key=value ...` or `@Mad tool {json}`."""

    mad: str
    tool: str
    args: dict[str, Any]
    raw_args: bool = True
    """True when values are strings still to be coerced by the tool's schema (key=value form)."""
    error: str | None = None
    """Why the arguments did not parse; the command is then only a candidate."""


@dataclass(slots=True)
class Parsed:
    """What the parser reads from a message's text."""

    mentions: list[str]
    tags: list[str]
    kind: Kind
    command: Command | None
    paths: list[str]


def parse_args(text: str) -> tuple[dict[str, Any], bool]:
    """Parse `key=value key:=json` pairs or one JSON object; returns (args, raw) or raises ValueError."""
    text = text.strip()
    if not text:
        return {}, True
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"arguments are not valid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(value, dict):
            raise ValueError("JSON arguments must be an object")
        return value, False
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot split arguments: {exc}") from None
    return parse_pairs(tokens), True


def parse_pairs(tokens: list[str]) -> dict[str, Any]:
    """`key=value` (a string to coerce) and `key:=JSON` (typed as given) tokens, as in httpie."""
    args: dict[str, Any] = {}
    for token in tokens:
        key, sep, text = token.partition("=")
        value: Any = text
        if not sep:
            raise ValueError(f"expected key=value, got {token!r}")
        if key.endswith(":"):
            key = key[:-1]
            try:
                value = RawJSON(json.loads(text))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{key}:= needs JSON: {exc.msg}") from None
        if not _KEY.match(key):
            raise ValueError(f"bad argument name {key!r}")
        if key in args:
            raise ValueError(f"argument {key!r} is given twice")
        args[key] = value
    return args


class RawJSON:
    """A value given as `key:=JSON`: already typed, not to be coerced."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"RawJSON({self.value!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawJSON) and other.value == self.value


def parse(content: str) -> Parsed:
    """Read mentions, tags, kind, command and paths from a message's text; never raises."""
    if not isinstance(content, str):
        content = str(content)
    mentions = list(dict.fromkeys(m.lower() for m in _MENTION.findall(content)))
    tags = list(dict.fromkeys(t.lower() for t in _TAG.findall(content)))
    urls = _URL.findall(content)
    paths = list(dict.fromkeys(urls + _PATH.findall(_URL.sub(" ", content) if urls else content)))
    command = parse_command(content)
    if command is not None and command.error is None:
        kind: Kind = "deterministic"
    elif paths and _only_references(content):
        kind = "fixed"
    else:
        kind = "prose"
    return Parsed(mentions, tags, kind, command, paths)


def parse_command(content: str) -> Command | None:
    """The deterministic command a text holds (`@Mad tool args`), if it holds one; never raises."""
    head = _COMMAND_HEAD.match(content)
    if not head:
        return None
    mad, tool, rest = head.group(1).lower(), head.group(2), head.group(3)
    try:
        args, raw = parse_args(rest)
        return Command(mad, tool, args, raw)
    except ValueError as exc:
        return Command(mad, tool, {}, True, error=str(exc))


def _only_references(content: str) -> bool:
    """True when the text is nothing but mentions, tags and paths: data passed by reference."""
    rest = _URL.sub(" ", content)
    rest = _PATH.sub(" ", rest)
    rest = _MENTION.sub(" ", rest)
    rest = _TAG.sub(" ", rest)
    return not rest.strip(" \t\n,;:.")


@dataclass(slots=True)
class Message:
    """One MAD CP message on the bus."""

    conversation: str
    sender: str
    content: str
    id: str = field(default_factory=new_id)
    mentions: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    kind: Kind = "prose"
    paths: list[str] = field(default_factory=list)
    reply_to: str | None = None
    correlation_id: str | None = None
    created: float = field(default_factory=time.time)
    data: Any = None
    """Structured payload beside the readable text (a tool result, stage figures)."""
    command: Command | None = field(default=None, repr=False)
    """The parsed command; kept off the wire so redacted content never loses real arguments."""

    @classmethod
    def create(
        cls,
        conversation: str,
        sender: str,
        content: str,
        *,
        reply_to: str | None = None,
        correlation_id: str | None = None,
        data: Any = None,
        extra_tags: list[str] | None = None,
    ) -> Message:
        """Build a message from text, reading mentions, tags, kind and command from it."""
        parsed = parse(content)
        tags = parsed.tags
        if extra_tags:
            tags = list(dict.fromkeys([*tags, *extra_tags]))
        msg = cls(
            conversation=conversation,
            sender=sender.lower(),
            content=content,
            mentions=parsed.mentions,
            tags=tags,
            kind=parsed.kind,
            paths=parsed.paths,
            reply_to=reply_to,
            data=data,
            command=parsed.command,
        )
        msg.correlation_id = correlation_id or msg.id
        return msg

    def reply(self, sender: str, text: str, *, tags: list[str] | None = None, data: Any = None) -> Message:
        """A reply addressed to this message's sender, in the same conversation and correlation."""
        tag_text = " ".join(f"#{t}" for t in (tags or []))
        head = f"@{self.sender} {tag_text}".rstrip()
        content = f"{head}\n{text}" if "\n" in text else f"{head} {text}"
        return Message.create(
            self.conversation,
            sender,
            content,
            reply_to=self.id,
            correlation_id=self.correlation_id,
            data=data,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        """A message back from its wire form; the command is read again from the content."""
        fields = {name: data[name] for name in _WIRE if name in data}
        message = cls(**fields)
        message.command = parse_command(message.content)
        return message

    def to_dict(self) -> dict[str, Any]:
        """The wire form: every field but the parsed command."""
        return {
            "id": self.id,
            "conversation": self.conversation,
            "sender": self.sender,
            "content": self.content,
            "mentions": self.mentions,
            "tags": self.tags,
            "kind": self.kind,
            "paths": self.paths,
            "reply_to": self.reply_to,
            "correlation_id": self.correlation_id,
            "created": self.created,
            "data": self.data,
        }


_WIRE = ("id", "conversation", "sender", "content", "mentions", "tags", "kind", "paths", "reply_to",
         "correlation_id", "created", "data")
