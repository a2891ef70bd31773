"""The README's Python code runs as written: every ```python block of README.md, verbatim, in a fresh
interpreter started in the repo root (where a reader runs it), offline. A check appended after the
snippet makes sure it did what it says (the student's LoRA is loaded into the built-in base)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LOADED = """
# appended by the test: the snippet loaded the student's LoRA into the pipeline's transformer
adapters = pipe.get_list_adapters()
assert adapters.get("transformer"), adapters
print("LORA LOADED", adapters)
"""


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, re.S | re.M)


def test_the_readmes_python_snippet_runs_verbatim_in_a_fresh_process():
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert blocks, "README.md has no ```python block to test"
    code = "\n".join(blocks)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}  # nothing but the cwd makes `engine` importable
    done = subprocess.run(
        [sys.executable, "-c", code + (LOADED if "pipe" in code else "")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, f"README.md's snippet failed:\n{done.stderr[-3000:]}"
    if "pipe" in code:
        assert "LORA LOADED" in done.stdout
