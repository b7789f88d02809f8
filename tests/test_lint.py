"""Lint, types and size, as part of the README's test command (so ``.ci/run`` runs them on a clean clone).

* ``ruff check`` over the repository, with pyproject.toml's settings, at the version the ``test`` extra pins.
  (``ruff format --check`` is not run: the code base is not in ruff's format today, and its hand-aligned
  tables are not meant to be.)
* ``mypy`` in strict mode, as pyproject.toml configures it: the package, the adapters, ``packaging/`` and the
  root ``conftest.py`` (tests, benchmarks and compat tests are excluded there).
* No file of the package or of the adapters is over :data:`MAX_LINES` lines.
* Every relative link of the READMEs and ``docs/`` leads to a file that exists, and to a heading of it where
  the link names one.

Each test fails with the findings printed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The most lines a file of the package or of an adapter may have.
MAX_LINES = 450


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip


def test_ruff_check_finds_nothing() -> None:
    proc = _run("ruff", "check", "--no-cache", "--output-format", "concise", ".", timeout=300)
    assert proc.returncode == 0, f"ruff check found:\n{proc.stdout}{proc.stderr}"


def test_mypy_finds_nothing() -> None:
    proc = _run("mypy", ".", timeout=1200)  # a cold cache takes a minute or two on two cores
    assert proc.returncode == 0, f"mypy found:\n{proc.stdout}{proc.stderr}"


def test_no_file_of_the_package_or_the_adapters_is_over_the_size_budget() -> None:
    files = [*(ROOT / "qwen_whisper_compat").rglob("*.py"), *(ROOT / "adapters").rglob("*.py")]
    assert len(files) > 50, "the package was not found"
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in files}
    over = {name: lines for name, lines in sorted(sizes.items()) if lines > MAX_LINES}
    assert over == {}, f"files over {MAX_LINES} lines: {over}"


#: A markdown link: ``[text](target)``.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(page: Path) -> list[str]:
    """The lines of ``page`` outside fenced code blocks."""
    lines, fenced = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``page``: lower case, punctuation dropped, spaces to hyphens."""
    headings = (m.group(1) for line in _prose(page) if (m := re.match(r"#{1,6} (.+)", line)))
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_relative_link_of_the_docs_resolves() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("*/README.md")),
             *sorted((ROOT / "adapters").glob("*/README.md"))]  # fmt: skip
    assert (ROOT / "docs" / "speed.md") in pages
    broken = []
    for page in pages:
        for target in (t for line in _prose(page) for t in LINK.findall(line)):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == [], "broken links:\n" + "\n".join(broken)
