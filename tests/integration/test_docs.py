"""The documentation: generated reference pages are current, the site builds with no broken link, and the
README stays short with every relative link pointing at a file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from support import BIN, REPO

GENERATE = REPO / "docs" / "generate.py"
REFERENCE = REPO / "docs" / "reference"
PAGES = ("parameters.md", "architectures.md", "losses.md", "cli.md", "benchmarks.md")


def generate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GENERATE), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_the_committed_reference_pages_are_what_the_code_generates(tmp_path):
    checked = generate("--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr  # else: run `python docs/generate.py`
    written = generate("--out", str(tmp_path))  # into a temporary folder: the same bytes, nothing else touched
    assert written.returncode == 0, written.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(PAGES)  # no temporary file left behind
    for name in PAGES:
        assert (tmp_path / name).read_bytes() == (REFERENCE / name).read_bytes(), name
    again = generate("--out", str(tmp_path))  # idempotent: an unchanged page is not rewritten
    assert again.returncode == 0 and "wrote" not in again.stdout


def test_check_names_a_stale_page_and_changes_nothing(tmp_path):
    for name in PAGES:
        shutil.copy(REFERENCE / name, tmp_path / name)
    stale = tmp_path / "losses.md"
    stale.write_text(stale.read_text() + "\nedited by hand\n")
    before = stale.read_bytes()
    checked = generate("--check", "--out", str(tmp_path))
    assert checked.returncode == 1
    assert "losses.md" in checked.stderr and "parameters.md" not in checked.stderr
    assert stale.read_bytes() == before


def test_the_site_builds_in_strict_mode(tmp_path):
    mkdocs = BIN / "mkdocs"
    if not mkdocs.exists():
        pytest.skip(f"{mkdocs} is not installed: pip install -e '.[docs]'")
    built = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=REPO,
                           capture_output=True, text=True, timeout=600,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stdout + built.stderr  # strict: a broken link or anchor fails the build
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "reference" / "parameters" / "index.html").exists()


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def test_the_readme_is_short_and_its_relative_links_point_at_files():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    targets = [m.group(1) for m in LINK.finditer(text)]
    assert targets, "no link found: the pattern no longer matches the README's links"
    relative = [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]
    missing = [t for t in relative if not (REPO / t.split("#")[0]).exists()]
    assert missing == []


def test_no_time_in_the_prose_is_typed_by_hand():
    """A duration in the README or the docs comes from a recorded run (a `<!-- recorded: -->` block), with its
    commit; one typed in prose goes stale unnoticed."""
    sys.path.insert(0, str(GENERATE.parent))
    from generate import RECORDED_BLOCK, pages_with_recorded

    typed = []
    for page in pages_with_recorded():
        if page.parent == REFERENCE:
            continue  # generated from the code and the recorded runs
        prose = RECORDED_BLOCK.sub("", page.read_text())
        typed += [f"{page.relative_to(REPO)}: {m[0]}" for m in re.finditer(
            r"\b\d+ min \d+ s\b|\b\d+(\.\d+)? ?(ms|s) (wall|CPU)\b|recorded with an earlier version", prose, re.I)]
    assert typed == []


@pytest.mark.parametrize("script", ["domains.py", "budget.py"])
def test_the_recorded_sweeps_come_from_todays_training_and_report_code(script):
    """--check: the tables the README and the how-tos embed (the cross-dataset summary; halving against the full
    sweep) were recorded on the code that runs now."""
    checked = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--check"], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_readmes_screenshots_show_todays_report_and_page():
    """docs/screenshots.py --check: taken on the code that runs now (else: `make screenshots`)."""
    checked = subprocess.run([sys.executable, str(REPO / "docs/screenshots.py"), "--check"], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr
