"""LPPM, the Learned Prose-to-Process Mapper: prose the Imperator already resolved is answered without the LLM.

Learning. Each prose request the Imperator resolved with tool calls that all succeeded gives a
template: the request's words, with a typed slot wherever an argument's value appears (a
number, a path, a name, quoted text, or the free text that ends the request), and a plan: the
tool calls, their arguments as slot references or constants. Templates live in the MAD's own
state (table `_mad_lppm`), so they survive restarts and travel in a re-run's snapshot.

Serving. A template serves only after `min_support` agreeing resolutions (the same template
and the same plan); until then it runs in shadow and the Imperator answers. A request is
served only when it matches a template whole: every literal word the same (a different verb,
a flipped meaning word, a trailing clause: no match), every slot value of its type and valid
for the tool's schema. A served plan runs its calls through the normal path (grants,
journal) and answers with their results; a plan that fails is demoted to shadow.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from ..errors import MadError
from ..supervisor import one_line
from .stages import Outcome, Stage, Turn, render

TABLE = "_mad_lppm"
_TOKEN = re.compile(r'"[^"]*"|\'[^\']*\'|[\w./~-]+|[^\w\s]')
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_PATH = re.compile(r"[\w.~-]*(?:/[\w.~-]+)+/?|[\w~-]+\.[A-Za-z0-9]{1,6}")
_NAME = re.compile(r"[A-Za-z_][\w-]*")
SLOT_PATTERNS = {
    "number": r"-?\d+(?:\.\d+)?",
    "path": r"[\w.~-]*(?:/[\w.~-]+)+/?|[\w~-]+\.[A-Za-z0-9]{1,6}",
    "name": r"[A-Za-z_][\w-]*",
    "quoted": r"\"[^\"]*\"|'[^']*'",
    "text": r".+",
}


def prose_of(turn: Turn) -> str:
    """The request without the @mention that addressed it."""
    text = turn.message.content.strip()
    return re.sub(rf"^@{re.escape(turn.mad)}\b[,:]?\s*", "", text, flags=re.I).strip()


def _kind(value: str, quoted: bool) -> str:
    if quoted:
        return "quoted"
    if _NUMBER.fullmatch(value):
        return "number"
    if _PATH.fullmatch(value):
        return "path"
    if _NAME.fullmatch(value):
        return "name"
    return "text"


@dataclass
class Template:
    """A learned template and its plan, as kept in the MAD's state."""

    id: str
    parts: list[Any]
    """Literal words (lowercased) and slots {"slot": name, "kind": kind}."""
    plan: list[dict[str, Any]]
    """[{"tool": name, "arguments": {arg: {"slot": name} | {"const": value}}}]"""
    support: int = 0
    served: int = 0
    failures: int = 0

    @property
    def text(self) -> str:
        return " ".join(p if isinstance(p, str) else f"{{{p['slot']}:{p['kind']}}}" for p in self.parts)

    def pattern(self) -> re.Pattern[str]:
        pieces = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(re.escape(part))
            else:
                pieces.append(f"(?P<{part['slot']}>{SLOT_PATTERNS[part['kind']]})")
        return re.compile(r"\s*".join(pieces) + r"\s*[.!?]?", re.I)

    def bind(self, prose: str) -> dict[str, str] | None:
        """The slot values when the whole request fits the template; None otherwise."""
        found = self.pattern().fullmatch(prose.strip())
        if found is None:
            return None
        values = {}
        for part in self.parts:
            if isinstance(part, dict):
                value = found.group(part["slot"])
                values[part["slot"]] = value[1:-1] if part["kind"] == "quoted" else value
        return values

    def calls(self, values: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
        made = []
        for step in self.plan:
            arguments = {}
            for name, source in step["arguments"].items():
                if "slot" not in source:
                    arguments[name] = source["const"]
                else:
                    arguments[name] = [values[source["slot"]]] if source.get("list") else values[source["slot"]]
            made.append((step["tool"], arguments))
        return made


def induce(prose: str, calls: list[tuple[str, dict[str, Any]]]) -> Template | None:
    """A template and plan from one resolution; None when no argument value could be placed in the prose."""
    tokens = _TOKEN.findall(prose)
    parts: list[Any] = [t.lower() for t in tokens]
    slots: dict[str, str] = {}
    plan = []
    placed = 0
    for step, (tool, arguments) in enumerate(calls):
        planned: dict[str, Any] = {}
        for name, value in arguments.items():
            listed = isinstance(value, list) and len(value) == 1  # tags=["urgent"]: the one item from the prose
            scalar = value[0] if listed else value
            text = str(scalar) if isinstance(scalar, (str, int, float)) and not isinstance(scalar, bool) else None
            slot = None if text is None or not text.strip() else _place(tokens, parts, text, f"{name}{step}", slots)
            planned[name] = ({"slot": slot, "list": True} if listed else {"slot": slot}) if slot else {"const": value}
            placed += slot is not None
        plan.append({"tool": tool, "arguments": planned})
    if not placed:
        return None
    merged: list[Any] = []
    for part in parts:
        if part is None:
            continue
        merged.append(part)
    identity = json.dumps([merged, plan], sort_keys=True)
    return Template(hashlib.sha256(identity.encode()).hexdigest()[:12], merged, plan)


def _place(tokens: list[str], parts: list[Any], value: str, slot: str, slots: dict[str, str]) -> str | None:
    """Replace the value's tokens in the prose by a slot (reusing one that holds the same value)."""
    for existing, held in slots.items():
        if held == value:
            return existing
    for index, token in enumerate(tokens):
        if parts[index] is None or isinstance(parts[index], dict):
            continue
        if token[:1] in "\"'" and token[1:-1] == value:
            parts[index] = {"slot": slot, "kind": "quoted"}
            slots[slot] = value
            return slot
    wanted = _TOKEN.findall(value)
    for index in range(len(tokens) - len(wanted) + 1):
        if tokens[index:index + len(wanted)] == wanted and all(isinstance(p, str) for p in
                                                                 parts[index:index + len(wanted)]):
            kind = _kind(value, False) if len(wanted) == 1 else "text"
            if kind == "text" and index + len(wanted) != len(tokens):
                return None  # free text is a slot only at the end of the request, where it cannot swallow words
            parts[index] = {"slot": slot, "kind": kind}
            for rest in range(index + 1, index + len(wanted)):
                parts[rest] = None
            slots[slot] = value
            return slot
    return None


class Store:
    """The templates of one MAD, in its state database."""

    def __init__(self, db: Any) -> None:
        self.db = db
        db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, template TEXT NOT NULL, "
                   "parts TEXT NOT NULL, plan TEXT NOT NULL, support INTEGER NOT NULL, served INTEGER NOT NULL, "
                   "failures INTEGER NOT NULL, created REAL NOT NULL, updated REAL NOT NULL)")

    def all(self) -> list[Template]:
        rows = self.db.execute(f"SELECT id, parts, plan, support, served, failures FROM {TABLE} ORDER BY created")
        return [Template(r[0], json.loads(r[1]), json.loads(r[2]), r[3], r[4], r[5]) for r in rows.fetchall()]

    def agree(self, template: Template) -> int:
        """One more resolution agreeing with this template; its support now."""
        now = time.time()
        self.db.execute(
            f"INSERT INTO {TABLE} (id, template, parts, plan, support, served, failures, created, updated) "
            f"VALUES (?, ?, ?, ?, 1, 0, 0, ?, ?) ON CONFLICT(id) DO UPDATE SET support = support + 1, updated = ?",
            [template.id, template.text, json.dumps(template.parts), json.dumps(template.plan), now, now, now])
        row = self.db.execute(f"SELECT support FROM {TABLE} WHERE id = ?", [template.id]).fetchone()
        return int(row[0])

    def served(self, template: Template) -> None:
        self.db.execute(f"UPDATE {TABLE} SET served = served + 1, updated = ? WHERE id = ?", [time.time(), template.id])

    def demote(self, template: Template) -> None:
        self.db.execute(f"UPDATE {TABLE} SET support = 0, failures = failures + 1, updated = ? WHERE id = ?",
                        [time.time(), template.id])


def _fits(turn: Turn, calls: list[tuple[str, dict[str, Any]]]) -> bool:
    """Every call names a tool of the MAD and its arguments validate against the tool's schema."""
    for tool, arguments in calls:
        spec = turn.tools.get(tool)
        if spec is None:
            return False
        if spec.model is not None:
            try:
                spec.model.model_validate(arguments, strict=False)
            except Exception:
                return False
            types = spec.input_schema.get("properties", {})
            for name, value in arguments.items():
                wanted = types.get(name, {}).get("type")
                if wanted in ("integer", "number") and isinstance(value, str) and not _NUMBER.fullmatch(value):
                    return False
    return True


class LPPM(Stage):
    """Between DTR and the Imperator: serves learned templates with no LLM call."""

    name = "lppm"

    def __init__(self, state: Any, min_support: int = 2) -> None:
        self._state = state
        self.min_support = min_support
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        db = self._state()
        if self._store is None or self._store.db is not db:
            self._store = Store(db)
        return self._store

    def match(self, turn: Turn) -> tuple[Template, list[tuple[str, dict[str, Any]]]] | None:
        prose = prose_of(turn)
        if not prose:
            return None
        for template in self.store.all():
            if template.support < self.min_support:
                continue
            values = template.bind(prose)
            if values is None:
                continue
            calls = template.calls(values)
            if _fits(turn, calls):
                return template, calls
        return None

    async def handle(self, turn: Turn) -> Outcome | None:
        found = self.match(turn)
        if found is None:
            return None
        template, calls = found
        results = []
        for tool, arguments in calls:
            try:
                results.append(await turn.call(tool, arguments, True))
            except MadError as exc:
                self.store.demote(template)
                return Outcome(False, f"{tool}: {one_line(exc)}", self.name, tool_calls=[c for c, _ in calls],
                               calls=[(tool, arguments, False)])
        self.store.served(template)
        result = results[0] if len(results) == 1 else results
        avoided = 2 * (len(turn.message.content) // 4 + 200)  # the two model calls a tool call and its answer take
        return Outcome(True, render(result), self.name, result=result, tokens_avoided=avoided,
                       tool_calls=[tool for tool, _ in calls], calls=[(t, a, True) for t, a in calls])

    def learn(self, turn: Turn, outcome: Outcome) -> None:
        """An Imperator's resolution: every call succeeded, so its template gains support (shadow until enough)."""
        if not outcome.ok or not outcome.calls or not all(ok for _, _, ok in outcome.calls):
            return
        template = induce(prose_of(turn), [(tool, arguments) for tool, arguments, _ in outcome.calls])
        if template is not None:
            self.store.agree(template)
