"""The MAD base class and the @tool decorator: a MAD is a page of plain Python."""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pydantic

from .schema import build_model, json_schema

if TYPE_CHECKING:
    from sqlite_utils import Migrations

    from .isolation import Isolation

    from .context import MADContext
    from .message import Message

F = TypeVar("F", bound=Callable[..., Any])


def tool(fn: F | None = None, *, name: str | None = None, long_running: bool = False) -> Any:
    """Mark a MAD method as a tool named `<mad>_<method>`; its docstring is the description."""

    def mark(f: F) -> F:
        f.__mad_tool__ = {"name": name or f.__name__, "long_running": long_running}  # type: ignore[attr-defined]
        return f

    return mark(fn) if fn is not None else mark


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the ecosystem and the gateway see it."""

    name: str
    mad: str
    method: str
    description: str
    input_schema: dict[str, Any]
    model: type[pydantic.BaseModel] | None
    """None for a MAD the core never loaded (isolated): its own process validates the arguments."""
    secret_params: frozenset[str]
    is_async: bool
    long_running: bool = False

    def describe(self) -> dict[str, Any]:
        """Name, description and input schema, as `mad tools --json` prints it."""
        return {
            "name": self.name,
            "mad": self.mad,
            "description": self.description,
            "input_schema": self.input_schema,
        }


def _first_paragraph(doc: str | None) -> str:
    return inspect.cleandoc(doc or "").split("\n\n", 1)[0].replace("\n", " ").strip()


class MAD:
    """A MAD: its tools (methods marked @tool) and its Thought Engine, with a narrow context."""

    name: ClassVar[str] = ""
    """The MAD's handle on the bus and the prefix of its tools; default: the class name, lowercased."""
    description: ClassVar[str] = ""
    migrations: ClassVar[Migrations | None] = None
    """Numbered schema changes for the MAD's own SQLite state, applied before it starts."""
    observes_all: ClassVar[bool] = False
    """True for MADs that see every message on the bus (Rogers, Dewey)."""
    isolation: ClassVar[Isolation | None] = None
    """Run in its own limited process (`Isolation(memory_mb=512, ...)`); None: in the core, unless forced."""
    home_folders: ClassVar[tuple[str, ...]] = ()
    """Folders of MAD_HOME this MAD works in besides its state (Horace: `files`); isolated, it sees only these."""
    max_imperator_steps: ClassVar[int] = 6
    tools: ClassVar[dict[str, ToolSpec]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__ or not cls.__dict__["name"]:
            cls.name = cls.__name__.lower()
        cls.name = cls.name.lower()
        if "description" not in cls.__dict__:
            cls.description = _first_paragraph(cls.__doc__)
        cls.tools = _collect_tools(cls)

    def __init__(self, ctx: MADContext) -> None:
        self.ctx = ctx

    async def on_start(self) -> None:
        """Called once the MAD's state is open, before it takes messages."""

    async def on_stop(self) -> None:
        """Called when the MAD stops, restarts or is replaced."""

    async def on_message(self, message: Message, addressed: bool) -> None:
        """Handle a message delivered to this MAD; by default its Thought Engine answers it."""
        if addressed and message.reply_to is None:
            reply = await self.ctx.think(message)
            await self.ctx.publish(reply)

    async def on_observe(self, message: Message, conversation: dict[str, Any]) -> None:
        """See a message published anywhere on the bus (only when observes_all is set)."""

    async def converse(self, prompt: str) -> dict[str, Any]:
        """Talk to this MAD in prose or a command; its Thought Engine answers."""
        return await self.ctx.converse(prompt)


def _collect_tools(cls: type[MAD]) -> dict[str, ToolSpec]:
    specs: dict[str, ToolSpec] = {}
    members = dict(inspect.getmembers(cls, predicate=inspect.isfunction))
    for attr, fn in members.items():
        marker = getattr(fn, "__mad_tool__", None)
        if marker is None and attr != "converse":
            continue
        method = (marker or {}).get("name", attr)
        full = f"{cls.name}_{method}"
        model, secrets = build_model(fn, f"{full}_arguments")
        description = _first_paragraph(fn.__doc__)
        schema = json_schema(model)
        for name in secrets:  # clients mask it and never echo it
            schema["properties"][name].update({"format": "password", "writeOnly": True})
        specs[full] = ToolSpec(
            name=full,
            mad=cls.name,
            method=attr,
            description=description,
            input_schema=schema,
            model=model,
            secret_params=secrets,
            is_async=inspect.iscoroutinefunction(fn),
            long_running=(marker or {}).get("long_running", False),
        )
    return dict(sorted(specs.items()))
