"""Documentation cross-references resolve: every relative Markdown link and every repository path
(``benchmarks/x.py``, in code or in prose, outside fenced blocks) in a tracked *.md file names a file or
folder that exists."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
TOKEN = re.compile(r"[^\s`'\"()\[\]<>*,;]+")
TOP = {e for e in os.listdir(ROOT) if not e.startswith(".") or e == ".ci"}
PATHLIKE = re.compile(r"^[\w.-]+(/[\w.-]+)+/?$")


def markdown_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "*.md", "**/*.md"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot list the tracked Markdown files")
    return sorted(set(out))


def references(text: str) -> list[tuple[int, str, str]]:
    """(line, kind, target) of every relative link and repository path in a Markdown text."""
    refs = []
    in_fence = False
    for no, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        for m in LINK.finditer(line):
            t = m.group(1)
            if not re.match(r"^(https?:|mailto:|#)", t):
                refs.append((no, "link", t.split("#")[0]))
        for m in TOKEN.finditer(LINK.sub(" ", line)):
            t = m.group(0).rstrip(".:")
            last = t.rstrip("/").rsplit("/", 1)[-1]
            if PATHLIKE.match(t) and t.split("/")[0] in TOP and (t.endswith("/") or "." in last):
                refs.append((no, "path", t))  # a file (with an extension) or a folder (a trailing /)
    return refs


def test_references_are_found_in_links_code_and_prose():
    text = ("See [results](benchmarks/RESULTS.md#b1), `benchmarks/nope.py --x 1` and docs/X.md.\n"
            "[web](https://example.org) `plugins/<name>/plugin.py` `a/b` rt_info `netdsl/ir_sha256`\n"
            "```\nbenchmarks/in_fence.py\n```\n")
    assert references(text) == [(1, "link", "benchmarks/RESULTS.md"), (1, "path", "benchmarks/nope.py"),
                                (1, "path", "docs/X.md")]


def test_markdown_cross_references_resolve():
    missing = []
    files = markdown_files()
    assert "README.md" in files
    for md in files:
        base = os.path.dirname(os.path.join(ROOT, md))
        with open(os.path.join(ROOT, md), encoding="utf-8") as f:
            refs = references(f.read())
        for no, kind, target in refs:
            where = os.path.join(base, target) if kind == "link" else os.path.join(ROOT, target)
            if kind == "path" and not os.path.exists(where):
                where = os.path.join(base, target)  # a path relative to the file's own folder
            if not os.path.exists(where):
                missing.append(f"{md}:{no}: {kind} {target}")
    assert not missing, "references to files that do not exist:\n" + "\n".join(missing)
