"""The repository stands alone: no file refers to a path outside it, and the documentation's links resolve in it."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

OUTSIDE = [
    (re.compile(r"\.\./shared\b"), "a shared folder beside the repository"),
    (re.compile(r"(?<![\w.])/wor[k]/"), "an absolute path of the machine the repository was written on"),
    (re.compile(r"(?<![\w.])/(?:home|Users)/[A-Za-z]"), "a home folder"),
    (re.compile(r"(?<![\w.~])/roo[t]/"), "root's home folder"),
]
"""References to files outside the repository, in any file it keeps."""
DOC_ONLY = [
    (re.compile(r"(?<![\w.])/tmp/\w"), "a file in /tmp (documentation refers to files of the repository)"),
]
"""In documentation (Markdown) only: a test or a sandbox may well write into /tmp, a page must not send readers there."""
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def repository_files() -> list[Path]:
    """Every file git keeps or would keep (tracked, and new files not ignored)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None  # binary (or gone since it was listed): nothing to read


def documentation() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def test_no_file_of_the_repository_refers_to_a_path_outside_it() -> None:
    problems = []
    for path in repository_files():
        text = text_of(path)
        if text is None:
            continue
        rules = OUTSIDE + (DOC_ONLY if path.suffix == ".md" else [])
        for number, line in enumerate(text.splitlines(), 1):
            for pattern, what in rules:
                if pattern.search(line):
                    problems.append(f"{path.relative_to(ROOT)}:{number}: {what}: {line.strip()[:120]}")
    assert not problems, "\n".join(problems)


def test_every_markdown_link_resolves_to_a_file_of_the_repository() -> None:
    markdown = [p for p in repository_files() if p.suffix == ".md"]
    assert ROOT / "README.md" in markdown and ROOT / "docs" / "authoring.md" in markdown
    problems = []
    for path in markdown:
        text = FENCE.sub("", path.read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not a file
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(ROOT)}: ({target})"
            if not linked.is_relative_to(ROOT):
                problems.append(f"{where} leaves the repository")
            elif not linked.exists():
                problems.append(f"{where} does not exist")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(f"{where}: {linked.name} has no heading #{anchor}")
    assert not problems, "\n".join(problems)


def test_the_readme_keeps_its_two_commands_at_the_top_and_links_every_page_of_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first, second = re.findall(r"^```sh\n(.*?)\n```", readme, re.MULTILINE | re.DOTALL)[:2]
    assert first.endswith(".venv/bin/mad tui") and second.endswith(".venv/bin/python -m pytest")
    assert readme.index(second) < readme.index("\n## ")
    section = readme.split("\n## Documentation\n", 1)[1].split("\n## ", 1)[0]
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert pages == ["architecture.md", "authoring.md", "cli.md", "mcp.md", "troubleshooting.md"]
    for name in pages:
        assert f"](docs/{name})" in section, f"README's Documentation section does not link docs/{name}"
