"""The docs stand alone: every relative link in README.md and docs/ resolves (file and
anchor), no doc sends the reader to a contract outside the repository, and CI runs the
README's commands in the order the README gives them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
#: Files of the original contract, which are not in the repository.
_OUTSIDE = re.compile(r"\b(?:SPEC|API)\.md\b")


def prose(text: str) -> str:
    """The text without code blocks and code spans, where a link is only an example."""
    return _CODE.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    return _LINK.findall(prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file; repeated headings get -1, -2, ... as on GitHub."""
    found: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        name, n = base, 0
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def broken_links(doc: Path) -> list[str]:
    """The relative links of ``doc`` whose file, or whose #anchor in a Markdown file, is missing."""
    broken = []
    for target in links(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto: and the like
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    return broken


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc: Path) -> None:
    """A link to a file that is not there, or to a heading that is not there, fails."""
    assert broken_links(doc) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_doc_names_a_contract_outside_the_repository(doc: Path) -> None:
    """The contract is in docs/ (api.md, running.md, ...), not in files the reader lacks."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    assert [f"{n}: {line}" for n, line in enumerate(lines, 1) if _OUTSIDE.search(line)] == []


def test_the_checker_finds_broken_files_and_anchors(tmp_path: Path) -> None:
    """The check itself can fail: a missing file, a missing anchor, but not code or URLs."""
    (tmp_path / "there.md").write_text("# A `code` title, here\n\n## Twice\n\n## Twice\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[ok](there.md) [ok](there.md#a-code-title-here) [ok](there.md#twice-1) [ok](#top)\n"
        "# Top\n[gone](missing.md) [bad](there.md#nowhere) [web](https://x.invalid/y.md)\n"
        "`[in code](missing-too.md)`\n```\n[in a block](missing-three.md)\n```\n"
    )
    assert broken_links(doc) == [
        "missing.md: no such file",
        "there.md#nowhere: no heading with anchor #nowhere",
    ]


def first_readme_command() -> str:
    """The last command of the README's first line that runs shotrunner."""
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert block is not None
    line = next(x for x in block.group(1).splitlines() if "shotrunner run" in x)
    return line.split("&&")[-1].strip()


def test_ci_runs_the_readmes_first_command_before_the_tests() -> None:
    """.ci/run runs the README's first command, then the test command, in that order."""
    command = first_readme_command()
    assert command == "shotrunner run examples/manifests/storyboard.yaml --simulate"
    script = (ROOT / ".ci" / "run").read_text()
    assert script.index(command) < script.index("python -m pytest -n 2")
