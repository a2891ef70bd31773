"""What a visitor may make the server read or fetch, when others can reach the studio.

On a Space, behind `--host 0.0.0.0` or a share link, the Distill form's data folder and base model, and the
base and feature models of Compare and Diversity, are typed by whoever opens the page: unconfined, a visitor
could make the server read any folder of videos on it or download any Hub repo, however large. There the
studio is *public* and

  - server folders must lie (after resolving symlinks) under the data dir's uploads/ (where uploaded data
    and data-set configs are kept) or a folder the owner lists in DFD_STUDIO_ALLOWED_PATHS
    (os.pathsep-separated); the rest of the data dir (the database, job folders, the cache) is not theirs;
  - hub ids must match DFD_STUDIO_ALLOWED_MODELS (comma-separated ids or `owner/*` patterns; default:
    the built-in teacher's family and Wan2.1-T2V-1.3B-Diffusers);
  - a job's worker processes (the Distill form's data_workers) are at most the machine's CPU count;
  - a run's size, the jobs waiting and the video headers a scan reads are bounded (studio/limits.py).

A local-only studio (127.0.0.1 and no share link) takes paths and hub ids as typed, as the command line
does; an owner may still list DFD_STUDIO_ALLOWED_MODELS there to limit downloads.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

import engine

from .files import uploads_folder
from .limits import PublicLimits

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
PUBLIC_DEFAULT_MODELS = ("Wan-AI/Wan2.1-T2V-1.3B-Diffusers",)


def is_public(host: str, share: bool = False, environ=None) -> bool:
    """Can others reach the studio: a Space, a share link, a server listening beyond this machine, or the owner
    saying so with DFD_STUDIO_PUBLIC=1 (a reverse proxy on this machine makes every visitor look local)."""
    environ = os.environ if environ is None else environ
    said = environ.get("DFD_STUDIO_PUBLIC", "").strip().lower() in ("1", "true", "yes")
    return bool(environ.get("SPACE_ID")) or said or share or host not in LOCAL_HOSTS


@dataclass(frozen=True)
class Access:
    public: bool
    roots: tuple[Path, ...]  # folders server paths must lie under (public only)
    models: tuple[str, ...] | None  # hub ids or owner/* patterns; None: any
    limits: PublicLimits | None = None  # a visitor's bounds (public only)

    def check_path(self, typed: str, what: str = "folder") -> Path:
        """The typed path, resolved; raises ValueError when a public studio may not read it."""
        path = Path(typed).expanduser()
        if not self.public:
            return path
        resolved = path.resolve()
        if any(resolved.is_relative_to(root) for root in self.roots):
            return resolved
        listed = ", ".join(str(r) for r in self.roots)
        raise ValueError(
            f"{typed} is outside the folders this studio may read ({listed}); put the {what} "
            "there, or ask the owner to add its folder to DFD_STUDIO_ALLOWED_PATHS"
        )

    def check_model(self, name: str) -> None:
        """Raise ValueError when `name` (built-in, a local folder or a hub id) may not be used here."""
        name = (name or "").strip()
        if not name or name in engine.BUILTIN_MODELS:
            return
        if looks_like_path(name):
            self.check_path(name, "model folder")
        elif "/" in name and self.models is not None and not any(fnmatch.fnmatchcase(name, p) for p in self.models):
            raise ValueError(
                f"{name} is not among the hub models this studio may fetch ({', '.join(self.models)}); "
                "pick one of those, or ask the owner to add it to DFD_STUDIO_ALLOWED_MODELS"
            )

    def allows_model(self, name: str) -> bool:
        """check_model as a yes/no: may this base be looked at here at all (a refused folder is not even probed)."""
        try:
            self.check_model(name)
        except ValueError:
            return False
        return True

    def check_workers(self, workers: int, field: str = "data_workers") -> None:
        """Raise ValueError when a public studio is asked for more worker processes per job than this machine
        has CPUs: the config allows up to 32 for a big machine's owner, and a visitor's job must not start more
        processes than there are cores to run them on a shared machine."""
        cap = os.cpu_count() or 1
        if self.public and workers > cap:
            raise ValueError(
                f"{field} {workers} is more than this public studio allows: at most {cap}, the number "
                "of CPUs of this machine"
            )

    def check_run(self, config, name=lambda field: field) -> None:
        """Raise ValueError when a public studio's visitor asks for a bigger run than its limits allow."""
        if self.public and self.limits is not None:
            self.limits.check_run(config, name)

    def check_frames(self, count: int | None, field: str = "Video frames") -> None:
        """Raise ValueError when a public studio's visitor asks for longer sampled clips than its limits allow."""
        if self.public and self.limits is not None:
            self.limits.check_frames(count, field)

    def check_repeats(self, spec) -> None:
        """Raise ValueError when a data-set config's repeats pass a public studio's limit."""
        if self.public and self.limits is not None and spec is not None:
            self.limits.check_repeats(spec)

    def check_queue(self, data_dir, jobs: int = 1) -> None:
        """Raise ValueError when a public studio's queue cannot take `jobs` more."""
        if self.public and self.limits is not None:
            self.limits.check_queue(data_dir, jobs)

    @property
    def max_probes(self) -> int | None:
        """How many video headers one web request may read in a scan (None: all)."""
        return self.limits.max_scan if self.public and self.limits is not None else None

    def check_feature_models(self, text: str | None, owners: str = "") -> None:
        """Raise ValueError when a model of a 'clip:MODEL,dinov2:MODEL' box may not be used here. The entries
        of `owners` (the app's DFD_STUDIO_FEATURES, which the owner set) pass as they are; malformed entries
        are left to the engine's check, which says how to write them."""
        trusted = {part.strip() for part in (owners or "").split(",") if part.strip()}
        for spec in (part.strip() for part in (text or "").split(",")):
            kind, sep, model = spec.partition(":")
            if not sep or not model.strip() or spec in trusted:
                continue
            try:
                self.check_model(model.strip())
            except ValueError as err:
                raise ValueError(f"the {kind.strip()} model in Feature models: {err}") from None


def looks_like_path(name: str) -> bool:
    """A local folder rather than a hub id (`owner/name`): as engine's model names tell them apart."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or Path(name).expanduser().exists()


def access_from_env(data_dir: str | Path, public: bool, environ=None) -> Access:
    environ = os.environ if environ is None else environ
    listed = [
        Path(p).expanduser().resolve()
        for p in environ.get("DFD_STUDIO_ALLOWED_PATHS", "").split(os.pathsep)
        if p.strip()
    ]
    models = tuple(m.strip() for m in environ.get("DFD_STUDIO_ALLOWED_MODELS", "").split(",") if m.strip())
    if not models:
        models = PUBLIC_DEFAULT_MODELS if public else None
    limits = PublicLimits.from_env(environ) if public else None
    return Access(public, (uploads_folder(data_dir), *listed), models, limits)


LOCAL = Access(False, (), None)  # the command line's rules: everything as typed
