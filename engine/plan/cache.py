"""Plans kept on disk by what they were planned from: a plan at real size takes minutes of CPU, and the same
settings give the same plan, so a repeated run start (the trainer's pre-flight), a repeated
`python -m engine plan` or the Distill tab's Plan button reads it back at once. The key is a hash of the
spec, the base's configs (a local folder's config files may change), the stages asked for, the planner's
own source and the torch and diffusers versions: a change to any of them plans afresh. Torch-free: the
planning itself runs in the caller (`cached_plan`) or in a fresh process (`plan_dict`)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from .spec import PlanError, PlanSpec

_SOURCES = Path(__file__).parent


def cache_dir() -> Path:
    """DFD_PLAN_CACHE, else ~/.cache/dfd-studio/plans."""
    return Path(os.environ.get("DFD_PLAN_CACHE") or Path.home() / ".cache" / "dfd-studio" / "plans")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def spec_key(spec: PlanSpec, only: tuple[str, ...] | None = None) -> str:
    """The hash a plan of `spec` (checked) is kept under."""
    planner = hashlib.sha256()
    for path in sorted(_SOURCES.glob("*.py")):
        planner.update(path.read_bytes())
    what = {
        "spec": spec.to_dict(),
        "configs": spec.configs()[:2],
        "only": sorted(only) if only else None,
        "planner": planner.hexdigest(),
        "torch": _version("torch"),
        "diffusers": _version("diffusers"),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:32]


def load(key: str, folder: Path | None = None) -> dict | None:
    """The kept plan's dict, or None (none kept, or an unreadable file, which is then planned afresh)."""
    path = (folder or cache_dir()) / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def save(key: str, plan: dict, folder: Path | None = None) -> None:
    """Keep `plan` under `key`, written whole or not at all; a cache that cannot be written is skipped."""
    folder = folder or cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as f:
            json.dump(plan, f)
        os.replace(f.name, folder / f"{key}.json")
    except OSError:
        pass


def cached_plan(spec: PlanSpec, only: tuple[str, ...] | None = None, folder: Path | None = None):
    """make_plan(spec, only), read back when the same spec was planned before; returns (Plan, cached)."""
    from .planner import Plan, make_plan  # torch: only where a plan is made or rebuilt

    spec.check()
    key = spec_key(spec, only)
    kept = load(key, folder)
    if kept is not None:
        return Plan.from_dict(kept), True
    plan = make_plan(spec, only)
    save(key, plan.to_dict(), folder)
    return plan, False


def plan_dict(spec: PlanSpec, only: tuple[str, ...] | None = None, timeout: float = 1800) -> dict:
    """The plan of `spec` as a dict, read from the cache or planned in a fresh process (planning replaces
    torch's attention function for its duration, which a process that also samples must not see)."""
    spec.check()
    kept = load(spec_key(spec, only))
    if kept is not None:
        return kept
    request = json.dumps({"spec": spec.to_dict(), "only": list(only) if only else None})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "engine.plan.cache"],
            input=request,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2")),
        )
    except subprocess.TimeoutExpired:
        raise PlanError(f"planning {spec.base} took over {timeout:.0f} s: try a smaller size, or the CLI") from None
    if done.returncode != 0:
        raise PlanError(f"planning {spec.base} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _main() -> None:
    request = json.loads(sys.stdin.read())
    only = tuple(request["only"]) if request["only"] else None
    plan, _ = cached_plan(PlanSpec(**request["spec"]), only)
    print(json.dumps(plan.to_dict()))


if __name__ == "__main__":
    _main()
