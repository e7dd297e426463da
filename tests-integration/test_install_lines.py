"""No page tells a user to install a crucible name from the package index (#18).

`crucible-bench` on the index is someone else's project (see scripts/check-names), so until the
names are ours every install line names the repository (or a built wheel), never a bare name.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("packages/*/README.md")]
)
BARE = re.compile(
    r"pip install\s+(?:-U\s+)?[\"']?crucible(?:-[a-z]+)?(?:\[[^\]]*\])?[\"']?(?!\s*@)(?=[\s`|]|$)"
)


def _is_instruction(line: str) -> bool:
    """A command line (`pip install ...`, `$ pip install ...`) or a table cell giving one.

    Prose that names the bare command to warn against it is not an instruction.
    """
    text = line.strip()
    return text.startswith(("pip install", "$ pip install", "|"))


def test_every_install_line_names_the_repository_or_a_wheel() -> None:
    offenders = [
        f"{page.relative_to(ROOT)}:{n}: {line.strip()}"
        for page in PAGES
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1)
        if BARE.search(line) and _is_instruction(line)
    ]
    assert not offenders, "install lines by bare name:\n" + "\n".join(offenders)
    assert len(PAGES) > 20


def test_the_pattern_catches_a_bare_name() -> None:
    assert BARE.search('pip install "crucible-bench[all]"   # + polars')
    assert BARE.search("pip install crucible-core")
    assert not BARE.search(
        'pip install "crucible-bench @ git+https://github.com/crucible-framework/crucible#subdirectory=packages/crucible-bench"'
    )
    assert not BARE.search("pip install dist/crucible_core-0.1.0-py3-none-any.whl")
