"""Horace keeps versioned files under one root and refuses every path that leaves it."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mads.kernel import ToolError


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry below a folder (files with their bytes), to prove nothing was written there."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


async def test_write_read_and_versions_keep_every_sha256(make_ecosystem, tmp_path) -> None:
    async with make_ecosystem(only=["horace"]) as eco:
        first = await eco.call_tool("horace_write_file", {"path": "notes/a.txt", "content": "one\n"})
        assert first == {"path": "notes/a.txt", "version": 1, "sha256": sha("one\n"), "size": 4}
        second = await eco.call_tool("horace_write_file", {"path": "notes/a.txt", "content": "twö"})
        assert second["version"] == 2 and second["size"] == len("twö".encode())
        assert (tmp_path / "home" / "files" / "notes" / "a.txt").read_text(encoding="utf-8") == "twö"

        current = await eco.call_tool("horace_read_file", {"path": "notes/a.txt"})
        assert current == {"path": "notes/a.txt", "version": 2, "content": "twö", "sha256": sha("twö")}
        old = await eco.call_tool("horace_read_file", {"path": "notes/a.txt", "version": 1})
        assert old["content"] == "one\n" and old["sha256"] == sha("one\n")

        restored = await eco.call_tool("horace_restore_version", {"path": "notes/a.txt", "version": 1})
        assert restored["version"] == 3 and restored["sha256"] == sha("one\n")
        assert (tmp_path / "home" / "files" / "notes" / "a.txt").read_text(encoding="utf-8") == "one\n"

        info = await eco.call_tool("horace_get_file_info", {"path": "notes/a.txt"})
        assert info["version"] == 3 and info["sha256"] == sha("one\n") and info["size"] == 4
        assert [(v["version"], v["sha256"]) for v in info["versions"]] == [
            (1, sha("one\n")), (2, sha("twö")), (3, sha("one\n"))]
        assert all(v["created"] for v in info["versions"])


async def test_tags_and_prefix_filter_the_listing(make_ecosystem) -> None:
    async with make_ecosystem(only=["horace"]) as eco:
        for path in ("docs/a.md", "docs/b.md", "src/c.py"):
            await eco.call_tool("horace_write_file", {"path": path, "content": path})
        tagged = await eco.call_tool("horace_tag_file", {"path": "docs/b.md", "tags": ["#review", "draft"]})
        assert tagged == {"path": "docs/b.md", "tags": ["draft", "review"]}
        await eco.call_tool("horace_tag_file", {"path": "src/c.py", "tags": ["review"]})

        everything = await eco.call_tool("horace_list_files", {})
        assert [f["path"] for f in everything] == ["docs/a.md", "docs/b.md", "src/c.py"]
        docs = await eco.call_tool("horace_list_files", {"prefix": "docs/"})
        assert [f["path"] for f in docs] == ["docs/a.md", "docs/b.md"]
        review = await eco.call_tool("horace_list_files", {"tag": "review"})
        assert [f["path"] for f in review] == ["docs/b.md", "src/c.py"]
        both = await eco.call_tool("horace_list_files", {"prefix": "docs", "tag": "review"})
        assert [(f["path"], f["tags"], f["sha256"]) for f in both] == [
            ("docs/b.md", ["draft", "review"], sha("docs/b.md"))]
        info = await eco.call_tool("horace_get_file_info", {"path": "docs/b.md"})
        assert info["tags"] == ["draft", "review"]


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../x", "..", "a/../../../outside/x"])
async def test_path_escaping_the_root_is_refused(make_ecosystem, tmp_path, path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("untouched")
    before = snapshot(tmp_path / "outside")
    async with make_ecosystem(only=["horace"]) as eco:
        for tool, args in (("horace_write_file", {"content": "pwned"}), ("horace_read_file", {}),
                           ("horace_get_file_info", {}), ("horace_tag_file", {"tags": ["x"]})):
            with pytest.raises(ToolError, match="escapes the files root"):
                await eco.call_tool(tool, {"path": path, **args})
    assert snapshot(tmp_path / "outside") == before
    assert not (tmp_path / "x").exists() and not (tmp_path / "home" / "x").exists()


async def test_symlinked_folder_out_of_the_root_is_refused(make_ecosystem, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("private")
    before = snapshot(outside)
    async with make_ecosystem(only=["horace"]) as eco:
        os.symlink(outside, tmp_path / "home" / "files" / "link")
        for path in ("link/new.txt", "link/secret.txt", "link/deeper/new.txt"):
            with pytest.raises(ToolError, match="escapes the files root"):
                await eco.call_tool("horace_write_file", {"path": path, "content": "pwned"})
        with pytest.raises(ToolError, match="escapes the files root"):
            await eco.call_tool("horace_read_file", {"path": "link/secret.txt"})
    assert snapshot(outside) == before


async def test_symlinked_file_out_of_the_root_is_refused(make_ecosystem, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_text("private")
    before = snapshot(outside)
    async with make_ecosystem(only=["horace"]) as eco:
        os.symlink(outside / "target.txt", tmp_path / "home" / "files" / "trap.txt")
        os.symlink(outside / "missing.txt", tmp_path / "home" / "files" / "dangling.txt")
        for path in ("trap.txt", "dangling.txt"):
            with pytest.raises(ToolError, match="symlink"):
                await eco.call_tool("horace_write_file", {"path": path, "content": "pwned"})
    assert snapshot(outside) == before
    assert not (outside / "missing.txt").exists()


async def test_unknown_file_or_version_is_a_tool_error(make_ecosystem) -> None:
    async with make_ecosystem(only=["horace"]) as eco:
        await eco.call_tool("horace_write_file", {"path": "a.txt", "content": "x"})
        with pytest.raises(ToolError, match="a.txt has no version 7"):
            await eco.call_tool("horace_read_file", {"path": "a.txt", "version": 7})
        with pytest.raises(ToolError, match="has no version 9"):
            await eco.call_tool("horace_restore_version", {"path": "a.txt", "version": 9})
        with pytest.raises(ToolError, match="no such file: b.txt"):
            await eco.call_tool("horace_read_file", {"path": "b.txt"})
        with pytest.raises(ToolError, match="no such file"):
            await eco.call_tool("horace_get_file_info", {"path": "b.txt"})


async def test_catalogue_persists_across_ecosystems_on_the_same_home(make_ecosystem) -> None:
    async with make_ecosystem(only=["horace"]) as eco:
        await eco.call_tool("horace_write_file", {"path": "keep.txt", "content": "v1"})
        await eco.call_tool("horace_write_file", {"path": "keep.txt", "content": "v2"})
        await eco.call_tool("horace_tag_file", {"path": "keep.txt", "tags": ["kept"]})
    async with make_ecosystem(only=["horace"]) as eco:
        info = await eco.call_tool("horace_get_file_info", {"path": "keep.txt"})
        assert info["version"] == 2 and info["tags"] == ["kept"]
        old = await eco.call_tool("horace_read_file", {"path": "keep.txt", "version": 1})
        assert old["content"] == "v1"


async def test_commands_on_the_bus_reach_horace(make_ecosystem) -> None:
    async with make_ecosystem(only=["horace"]) as eco:
        await eco.call_tool("horace_write_file", {"path": "a.txt", "content": "hello"})
        _, replies = await eco.send("@Horace read_file path=a.txt")
        assert replies[0].data["ok"] is True
        assert replies[0].data["result"]["content"] == "hello"
        _, replies = await eco.send("@Horace read_file path=../etc/passwd")
        assert replies[0].data["ok"] is False
        assert "escapes the files root" in replies[0].data["error"]
