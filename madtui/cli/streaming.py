"""`mad send` on a terminal: each streamed reply is written as its text arrives, then only its figures."""
from __future__ import annotations

import sys
from typing import Any, TextIO

from mads.kernel import Message


class StreamPrinter:
    """An event sink writing the text of every streamed LLM reply to a terminal as it comes in."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._current: tuple[str, int] | None = None
        self.streamed: dict[str, str] = {}
        """Each MAD's last streamed text: its reply is then not written again."""

    def handle(self, record: Any) -> None:
        kind = record.kind
        if kind not in ("llm_chunk", "llm_result", "llm_cancelled"):
            return
        p = record.payload
        key = (p.get("caller") or "", p.get("call", -1))
        if kind == "llm_chunk":
            if key != self._current:
                self._end()
                self.out.write(f"── {key[0]} ✦ streaming\n")
                self._current = key
                self.streamed[key[0]] = ""
            self.out.write(p.get("text", ""))
            self.out.flush()
            self.streamed[key[0]] += p.get("text", "")
        elif key == self._current:
            self._end()

    def _end(self) -> None:
        if self._current is not None:
            self.out.write("\n")
            self.out.flush()
            self._current = None

    def shown(self, reply: Message) -> bool:
        """Whether this reply's text is what was just streamed (so only its figures are left to write)."""
        text = self.streamed.get(reply.sender, "").strip()
        return bool(text) and reply.content.rstrip().endswith(text)
