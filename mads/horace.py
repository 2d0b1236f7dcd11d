"""Horace, the file keeper: versioned text files under one root folder, nothing reachable outside it."""
from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlite_utils import Migrations

from mads.kernel import MAD, ToolError, tool

migrations = Migrations("horace")


@migrations()
def m001_create_tables(db: Any) -> None:
    db.execute("""CREATE TABLE files (
        path TEXT PRIMARY KEY, version INTEGER NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL)""")
    db.execute("""CREATE TABLE versions (
        path TEXT NOT NULL, version INTEGER NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
        content TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY (path, version))""")
    db.execute("CREATE TABLE tags (path TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (path, tag))")
    db.execute("CREATE INDEX tags_by_tag ON tags (tag)")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _escapes(path: str) -> ToolError:
    return ToolError(f"path escapes the files root: {path}")


def _inside(real: str, root: str) -> bool:
    """True when the resolved path `real` is the root or below it."""
    return real == root or real.startswith(root + os.sep)


class Horace(MAD):
    """Keeps text files under one root folder, every version with its SHA-256; restores any version."""

    migrations = migrations
    home_folders = ("files",)

    @property
    def root(self) -> Path:
        """The files root, MAD_HOME/files, resolved."""
        return Path(os.path.realpath(self.ctx.home / "files"))

    async def on_start(self) -> None:
        (self.ctx.home / "files").mkdir(parents=True, exist_ok=True)

    # paths -----------------------------------------------------------------
    def _key(self, path: str) -> str:
        """The catalogue key of a user path: relative, normalised, never leaving the root."""
        if not isinstance(path, str) or not path.strip():
            raise ToolError("path is empty")
        if "\x00" in path:
            raise ToolError("path contains a NUL character")
        if path.startswith(("/", "\\")) or os.path.isabs(path):
            raise _escapes(path)
        key = posixpath.normpath(path.replace(os.sep, "/"))
        if key == ".." or key.startswith("../") or key.startswith("/"):
            raise _escapes(path)
        if key == ".":
            raise ToolError(f"not a file path: {path}")
        return key

    def _target(self, path: str) -> tuple[str, Path]:
        """The key and the on-disk path of a user path, after checking no symlink leads outside."""
        key = self._key(path)
        root = str(self.root)
        target = Path(root, *key.split("/"))
        if not _inside(os.path.realpath(target.parent), root):
            raise _escapes(path)
        if target.is_symlink():
            raise ToolError(f"path is a symlink, refused: {path}")
        if not _inside(os.path.realpath(target), root):
            raise _escapes(path)
        return key, target

    def _write_disk(self, path: str, target: Path, content: str) -> None:
        """Write the file atomically: a temp file in the same folder, then os.replace."""
        root = str(self.root)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise ToolError(f"a parent of {path} is a file, not a folder") from None
        if not _inside(os.path.realpath(target.parent), root) or target.is_symlink():
            raise _escapes(path)
        if target.is_dir():
            raise ToolError(f"{path} is a folder")
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".horace-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(content)
            os.replace(tmp, target)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise

    # catalogue -------------------------------------------------------------
    def _file(self, key: str) -> dict[str, Any]:
        rows = list(self.ctx.state.query("SELECT * FROM files WHERE path = ?", [key]))
        if not rows:
            raise ToolError(f"no such file: {key}")
        return rows[0]

    def _version(self, key: str, version: int) -> dict[str, Any]:
        rows = list(self.ctx.state.query(
            "SELECT * FROM versions WHERE path = ? AND version = ?", [key, version]))
        if not rows:
            raise ToolError(f"{key} has no version {version}")
        return rows[0]

    def _tags(self, key: str) -> list[str]:
        return [r["tag"] for r in self.ctx.state.query("SELECT tag FROM tags WHERE path = ? ORDER BY tag", [key])]

    def _store(self, path: str, content: str) -> dict[str, Any]:
        """Record a new version of the file and write it to disk, in one transaction."""
        key, target = self._target(path)
        data = content.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        now = _now()
        db = self.ctx.state
        with db.atomic():
            rows = list(db.query("SELECT version FROM files WHERE path = ?", [key]))
            version = rows[0]["version"] + 1 if rows else 1
            db.execute("INSERT INTO versions (path, version, sha256, size, content, created) VALUES (?, ?, ?, ?, ?, ?)",
                       [key, version, digest, len(data), content, now])
            if rows:
                db.execute("UPDATE files SET version = ?, updated = ? WHERE path = ?", [version, now, key])
            else:
                db.execute("INSERT INTO files (path, version, created, updated) VALUES (?, ?, ?, ?)",
                           [key, version, now, now])
            try:
                self._write_disk(path, target, content)
            except OSError as exc:
                raise ToolError(f"cannot write {key}: {exc.strerror or exc}") from None
        return {"path": key, "version": version, "sha256": digest, "size": len(data)}

    # tools -----------------------------------------------------------------
    @tool
    def write_file(self, path: str, content: str) -> dict[str, Any]:
        """Write a text file under the files root as a new version; returns path, version, sha256, size."""
        return self._store(path, content)

    @tool
    def read_file(self, path: str, version: int | None = None) -> dict[str, Any]:
        """Read a file's current text, or an older version's; returns path, version, content, sha256."""
        key, _ = self._target(path)
        row = self._file(key)
        found = self._version(key, row["version"] if version is None else version)
        return {"path": key, "version": found["version"], "content": found["content"], "sha256": found["sha256"]}

    @tool
    def list_files(self, prefix: str | None = None, tag: str | None = None) -> list[dict[str, Any]]:
        """List the catalogued files, optionally those whose path starts with a prefix or carry a tag."""
        sql = ("SELECT f.path, f.version, f.updated, v.sha256, v.size FROM files f "
               "JOIN versions v ON v.path = f.path AND v.version = f.version")
        where: list[str] = []
        params: list[Any] = []
        if prefix:
            start = prefix[2:] if prefix.startswith("./") else prefix
            where.append("substr(f.path, 1, ?) = ?")
            params += [len(start), start]
        if tag:
            where.append("EXISTS (SELECT 1 FROM tags t WHERE t.path = f.path AND t.tag = ?)")
            params.append(tag.lstrip("#").strip().lower())
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = list(self.ctx.state.query(sql + " ORDER BY f.path", params))
        return [{**row, "tags": self._tags(row["path"])} for row in rows]

    @tool
    def get_file_info(self, path: str) -> dict[str, Any]:
        """A file's current version, sha256, size, tags and the list of all its versions."""
        key, _ = self._target(path)
        row = self._file(key)
        versions = list(self.ctx.state.query(
            "SELECT version, sha256, size, created FROM versions WHERE path = ? ORDER BY version", [key]))
        current = versions[-1]
        return {"path": key, "version": row["version"], "sha256": current["sha256"], "size": current["size"],
                "created": row["created"], "updated": row["updated"], "tags": self._tags(key),
                "versions": versions}

    @tool
    def restore_version(self, path: str, version: int) -> dict[str, Any]:
        """Make an old version current again, as a new version with the old content."""
        key, _ = self._target(path)
        self._file(key)
        old = self._version(key, version)
        result = self._store(key, old["content"])
        return {**result, "restored_from": version}

    @tool
    def tag_file(self, path: str, tags: list[str]) -> dict[str, Any]:
        """Add tags to a file (a leading # is dropped); returns the file's tags."""
        key, _ = self._target(path)
        self._file(key)
        clean = []
        for tag in tags:
            name = str(tag).strip().lstrip("#").strip().lower()
            if not name or any(c.isspace() for c in name):
                raise ToolError(f"not a tag: {tag!r}")
            clean.append(name)
        if not clean:
            raise ToolError("give at least one tag")
        with self.ctx.state.atomic():
            for name in clean:
                self.ctx.state.execute("INSERT OR IGNORE INTO tags (path, tag) VALUES (?, ?)", [key, name])
        return {"path": key, "tags": self._tags(key)}
