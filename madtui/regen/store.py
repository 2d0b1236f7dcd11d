"""Where regeneration keeps its work: `MAD_HOME/regen/<mad>/<n>/` per candidate, the replaced versions for rollback.

    regen/<mad>/<n>/candidate.py     the candidate gated
    regen/<mad>/<n>/report.json      its report (written when the gate ends)
    regen/<mad>/history/<k>.py       a version replaced by `--apply` (newest = highest k)
    regen/<mad>/history/<k>.json     where it came from: {"path", "sha256", "replaced_by", "at"}
    regen/.cache/<key>/              the current code's two re-runs of a recording, reused while
                                     neither the code nor the recording changes

Writing a module is atomic: the new text goes to a temporary file beside it, then replaces it.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from mads.kernel.errors import UsageError


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_atomically(path: Path, text: str) -> None:
    """Replace the file's content in one step: a reader sees the old text or the new, never a part."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Workspace:
    """One MAD's regeneration folder."""

    def __init__(self, home: Path, mad: str) -> None:
        self.mad = mad
        self.root = home / "regen" / mad

    @property
    def cache(self) -> Path:
        """The current code's re-runs of recordings, kept while neither changes (see `behaviour`)."""
        return self.root.parent / ".cache"

    def candidates(self) -> list[Path]:
        """Every candidate folder, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted((p for p in self.root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))

    def new_candidate(self, source: str) -> Path:
        """A fresh numbered folder holding the candidate's source."""
        self.root.mkdir(parents=True, exist_ok=True)
        number = max((int(p.name) for p in self.candidates()), default=0) + 1
        while True:  # two regens of the same MAD at once each get a number of their own
            folder = self.root / str(number)
            try:
                folder.mkdir()
                break
            except FileExistsError:
                number += 1
        (folder / "candidate.py").write_text(source, encoding="utf-8")
        return folder

    @staticmethod
    def save_report(folder: Path, report: dict[str, Any]) -> None:
        write_atomically(folder / "report.json", json.dumps(report, indent=2, ensure_ascii=False, default=str))

    # applying and rolling back ----------------------------------------------------------------
    @property
    def history(self) -> Path:
        return self.root / "history"

    def _kept(self) -> list[int]:
        if not self.history.is_dir():
            return []
        return sorted(int(p.stem) for p in self.history.glob("*.py") if p.stem.isdigit())

    def apply(self, module: Path, source: str, candidate: Path | None = None) -> dict[str, Any]:
        """Keep the module's current text, then replace it with `source` atomically."""
        current = module.read_text(encoding="utf-8")
        self.history.mkdir(parents=True, exist_ok=True)
        number = max(self._kept(), default=0) + 1
        (self.history / f"{number}.py").write_text(current, encoding="utf-8")
        (self.history / f"{number}.json").write_text(json.dumps({
            "path": str(module), "sha256": sha256(current), "replaced_by": sha256(source),
            "candidate": str(candidate) if candidate else None, "at": time.time()}), encoding="utf-8")
        write_atomically(module, source)
        return {"path": str(module), "kept": str(self.history / f"{number}.py"), "old_sha256": sha256(current),
                "new_sha256": sha256(source)}

    def rollback(self) -> dict[str, Any]:
        """Put back the version the last `--apply` replaced (each rollback goes one further back)."""
        kept = self._kept()
        if not kept:
            raise UsageError(f"nothing to roll back: no version of {self.mad} was replaced by mad regen --apply")
        number = kept[-1]
        meta = json.loads((self.history / f"{number}.json").read_text(encoding="utf-8"))
        module = Path(meta["path"])
        if not module.parent.is_dir():
            raise UsageError(f"cannot roll back {self.mad}: its folder {module.parent} is gone")
        previous = (self.history / f"{number}.py").read_text(encoding="utf-8")
        replaced = module.read_text(encoding="utf-8") if module.exists() else ""
        write_atomically(module, previous)
        (self.history / f"{number}.py").rename(self.history / f"{number}.rolled-back.py.txt")
        (self.history / f"{number}.json").rename(self.history / f"{number}.rolled-back.json")
        return {"path": str(module), "restored_sha256": sha256(previous), "replaced_sha256": sha256(replaced)}
