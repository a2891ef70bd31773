"""The engine's layers, read from every import of its code with ast (at the top of a module and inside
functions, absolute and relative): a subpackage imports only those below it in the order that
docs/architecture.md states, so no two import each other, directly or around a ring. An import inside a
function says in a comment why it is not at the top (start-up cost, an optional dependency, a torch-free
module kept torch-free), and the modules that refuse a bad request before torch loads stay torch-free."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"
TORCH_FREE = (
    "engine.cli.main",
    "engine.config",
    "engine.config.build",
    "engine.config.distill",
    "engine.config.files",
    "engine.config.options",
    "engine.config.sample",
    "engine.config.teacher",
    "engine.config.seeds",
    "engine.core.files",
    "engine.core.timesteps",
    "engine.core.hardware",
    "engine.models.names",
    "engine.models.students",
    "engine.evaluation.specs",
    "engine.evaluation.settings",
    "engine.jobs",
    "engine.jobs.kinds",
    "engine.jobs.worker",
    "engine.datasets.dataset_config",
    "engine.datasets.sources",
    "engine.distill.uploads",
    "engine.generation.renderer",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(imported engine module or name, line, enclosing function or None, the statement's source lines)."""
    source = path.read_text()
    tree = ast.parse(source)
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    lines = source.splitlines()
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                targets = [f"{module}.{alias.name}" for alias in child.names]
            else:
                visit(child, inner)
                continue
            text = lines[child.lineno - 1 : child.end_lineno]
            found.extend(
                [
                    (target, child.lineno, function, text, lines[child.lineno - 2] if child.lineno > 1 else "")
                    for target in targets
                ]
            )

    visit(tree, None)
    return found


def _engine_files() -> list[Path]:
    return sorted(p for p in ENGINE.rglob("*.py") if "assets" not in p.parts)


def _layers() -> list[list[str]]:
    """The engine's subpackages from top to bottom, as docs/architecture.md lists them (one line per layer)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"## The engine's layers\n(.*?)\n## ", text, re.S)
    assert block, 'docs/architecture.md needs its section "## The engine\'s layers"'
    rows = [line.strip() for line in block.group(1).splitlines() if line.startswith("    ") and line.strip()]
    return [[name.strip() for name in row.split(",")] for row in rows]


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "engine" and len(parts) > 2 and (ENGINE / parts[1]).is_dir() else None


def test_docs_architecture_places_every_engine_subpackage_in_one_layer():
    listed = [name for row in _layers() for name in row]
    packages = sorted(p.name for p in ENGINE.iterdir() if (p / "__init__.py").is_file())
    assert sorted(listed) == packages, f"docs/architecture.md's layers list {sorted(listed)}, engine has {packages}"


def test_every_engine_import_goes_down_the_layers():
    rank = {name: depth for depth, row in enumerate(_layers()) for name in row}
    upward = []
    for path in _engine_files():
        source = _subpackage(_module_name(path) + ".x")
        if source is None:  # engine/__init__.py (the lazy API) and __main__.py sit above every layer
            continue
        for target, line, function, _, _ in _imports(path):
            destination = _subpackage(target)
            if destination is not None and destination != source and rank[destination] <= rank[source]:
                where = f" (inside {function})" if function else ""
                upward.append(
                    f"{path.relative_to(ROOT)}:{line}{where} imports {target}: {source} may not import {destination}"
                )
    assert not upward, "imports against docs/architecture.md's layer order:\n" + "\n".join(upward)


def test_no_two_engine_subpackages_import_each_other_around_a_ring():
    edges: dict[str, dict[str, str]] = {}
    for path in _engine_files():
        source = _subpackage(_module_name(path) + ".x")
        for target, line, _, _, _ in _imports(path):
            destination = _subpackage(target)
            if source and destination and destination != source:
                edges.setdefault(source, {}).setdefault(destination, f"{path.relative_to(ROOT)}:{line} {target}")

    def ring_from(start, node, seen):
        for nxt, where in edges.get(node, {}).items():
            if nxt == start:
                return [where]
            if nxt not in seen:
                rest = ring_from(start, nxt, seen | {nxt})
                if rest:
                    return [where, *rest]
        return None

    rings = [ring for start in sorted(edges) if (ring := ring_from(start, start, {start}))]
    assert not rings, "engine subpackages import each other:\n" + "\n".join(" -> ".join(r) for r in rings)


def _explained(lines: list[str], first: int, last: int) -> bool:
    """A comment on the import's lines, or on the import lines and comment lines right above it (one reason
    may head a block of imports)."""
    if any("#" in line for line in lines[first - 1 : last]):
        return True
    above = first - 2
    while above >= 0 and lines[above].strip().startswith(("from ", "import ", "#")):
        if "#" in lines[above]:
            return True
        above -= 1
    return False


def test_every_import_inside_a_function_says_why_it_is_not_at_the_top():
    bare = []
    for path in _engine_files():
        lines = path.read_text().splitlines()
        for target, line, function, text, _ in _imports(path):
            if function and not _explained(lines, line, line + len(text) - 1):
                bare.append(f"{path.relative_to(ROOT)}:{line} (inside {function}): {target}")
    assert not bare, (
        "move these imports to the top of their module, or give the reason in a comment on the "
        "line (start-up cost, an optional dependency, a torch-free module):\n" + "\n".join(bare)
    )


def test_the_modules_that_refuse_a_bad_request_import_no_torch():
    code = (
        "import importlib, sys\n"
        f"for name in {TORCH_FREE!r}:\n    importlib.import_module(name)\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr[-2000:]
