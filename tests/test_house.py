"""The repository's own rules, checked on the tree as it is: every module is named in docs/modules.md,
engine/ is grouped into subpackages, no module is too long to be one job, and the product text neither
narrates its own history nor cites files outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def _tracked(*patterns: str) -> list[str]:
    """Paths git tracks, plus untracked ones it does not ignore (a change not committed yet)."""
    out = set()
    for args in (["ls-files"], ["ls-files", "--others", "--exclude-standard"]):
        listed = subprocess.run(["git", *args, *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
        out.update(line for line in listed.stdout.splitlines() if line)
    return sorted(p for p in out if (ROOT / p).is_file())


PRODUCT_CODE = _tracked("engine/*.py", "studio/*.py", "storage/*.py", "app.py")


def test_every_module_is_named_in_docs_modules_md():
    listed = (ROOT / "docs" / "modules.md").read_text()
    missing = [path for path in PRODUCT_CODE if f"`{path}`" not in listed]
    assert not missing, f"add a sentence for each of these to docs/modules.md: {missing}"


def test_engine_top_level_holds_only_subpackages_and_its_entry_points():
    loose = sorted(p.name for p in (ROOT / "engine").glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert not loose, f"put these modules in the engine subpackage they belong to: {loose}"
    for folder in (ROOT / "engine").iterdir():
        if folder.is_dir() and folder.name not in ("assets", "__pycache__"):
            assert (folder / "__init__.py").is_file(), f"{folder.name} is a folder of engine/ but not a package"


def test_no_module_is_longer_than_one_job_needs():
    long = {}
    for path in PRODUCT_CODE:
        lines = (ROOT / path).read_text().count("\n")
        if lines > MAX_LINES:
            long[path] = lines
    assert not long, f"split these by job (at most {MAX_LINES} lines each): {long}"


# Words that narrate how the project got here rather than what it is (history belongs in commits and issues).
HISTORY = re.compile(r"\b[Ss]ession \d+\b|\bround \d+ of work\b|\bcommit [0-9a-f]{7,40}\b|\buntil session\b")
EXTERNAL = re.compile(r"\.\./shared|(?<![\w/])snags\.md|(?<!docs/)(?<![\w/])method\.md")


PRODUCT_TEXT = PRODUCT_CODE + _tracked("README.md", "docs/*.md")
# scripts/make_assets.sh names the commits it checks out to replay the teacher's early stages: an instruction.
ALL_TEXT = PRODUCT_TEXT + _tracked("scripts/*", "tests/*.py", "Spacefile", "requirements*.txt", ".ci/*")


@pytest.mark.parametrize(
    "rule,pattern,texts", [("history", HISTORY, PRODUCT_TEXT), ("external citation", EXTERNAL, ALL_TEXT)]
)
def test_product_text_has_no_history_and_cites_nothing_outside_the_repo(rule, pattern, texts):
    hits = []
    for path in texts:
        for number, line in enumerate((ROOT / path).read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path}:{number}: {line.strip()[:100]}")
    assert not hits, f"{rule} in the product:\n" + "\n".join(hits)
