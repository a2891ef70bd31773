"""docs/space.md and the README front matter against huggingface_hub's own lists and signatures (the pinned
2.4): hardware names, the Volume a bucket or a model is mounted with, set_space_volumes; the scopes the app
asks for and the one line a missing one gets; a read-only mounted model as a base."""

from __future__ import annotations

import inspect
import re

import huggingface_hub
import pytest
import yaml

from conftest import ROOT
from studio.access import access_from_env
from studio.auth import JOBS_SCOPE, PUBLISH_SCOPE, missing_scope

DOC = (ROOT / "docs" / "space.md").read_text()


def front_matter() -> dict:
    return yaml.safe_load((ROOT / "README.md").read_text().split("---\n")[1])


def section(title: str) -> str:
    start = DOC.index(f"## {title}")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end > 0 else None]


def first_column(text: str) -> list[str]:
    """The backquoted names in the first column of a section's table."""
    return re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE)


def test_the_front_matter_follows_the_hubs_reference():
    meta = front_matter()
    assert "suggested_storage" not in meta  # the Hub ignores it: storage is a mounted bucket
    assert meta["suggested_hardware"] in {h.value for h in huggingface_hub.SpaceHardware}
    assert meta["hf_oauth_scopes"] == [PUBLISH_SCOPE]
    table = section("1. Duplicate")
    for key, value in re.findall(r"^\| `([a-z_]+)` \| `([^`]+)` \|", table, flags=re.MULTILINE):
        shown = meta[key] if not isinstance(meta[key], list) else meta[key][0]
        assert shown == value, f"docs/space.md says {key}: {value}, the README {meta[key]}"


def test_the_hardware_the_doc_names_exists_on_the_hub():
    spaces = first_column(section("4. Hardware"))
    assert "l40sx1" in spaces and "zero-a10g" in spaces
    assert set(spaces) <= {h.value for h in huggingface_hub.SpaceHardware}
    jobs = section("6. Training on HF Jobs")
    flavors = first_column(jobs[jobs.index("| flavor | GPU |") :])
    assert flavors and set(flavors) <= {h.value for h in huggingface_hub.JobHardware}


def test_the_volumes_example_runs_against_huggingface_hubs_signature(monkeypatch):
    """The doc's Python block, run with set_space_volumes replaced by one that binds the real signature."""
    block = re.search(r"```python\n(.*?)```", section("2. Attach a Storage Bucket for the data"), re.DOTALL).group(1)
    calls = []
    real = inspect.signature(huggingface_hub.HfApi.set_space_volumes)

    def set_space_volumes(self, *args, **kwargs):
        calls.append(real.bind(self, *args, **kwargs).arguments)

    monkeypatch.setattr(huggingface_hub.HfApi, "set_space_volumes", set_space_volumes)
    exec(compile(block, "docs/space.md", "exec"), {})
    (call,) = calls
    bucket, model = call["volumes"]
    assert isinstance(bucket, huggingface_hub.Volume) and bucket.type == "bucket" and bucket.mount_path == "/data"
    assert not bucket.read_only  # the data folder must be writable
    assert model.type == "model" and model.read_only and model.source in front_matter()["preload_from_hub"]
    assert bucket.to_dict() == {"type": "bucket", "source": "you/dfd-studio-data", "mountPath": "/data"}
    documented = {f.name for f in huggingface_hub.Volume.__dataclass_fields__.values()}
    assert {"type", "source", "mount_path", "read_only"} <= documented


def test_the_scopes_the_doc_lists_are_the_ones_the_app_checks():
    scopes = first_column(section("5. Sign-in scopes"))
    assert scopes == [PUBLISH_SCOPE, JOBS_SCOPE]
    assert "manage-repos" not in front_matter()["hf_oauth_scopes"]


@pytest.mark.parametrize(
    "granted, needed, missing",
    [
        ("openid profile", PUBLISH_SCOPE, True),
        ("openid profile contribute-repos", PUBLISH_SCOPE, False),
        ("openid profile manage-repos", PUBLISH_SCOPE, False),  # wider: it may create repos too
        ("openid profile contribute-repos", JOBS_SCOPE, True),
        ("openid contribute-repos jobs", JOBS_SCOPE, False),
        (None, PUBLISH_SCOPE, True),
    ],
)
def test_a_missing_scope_is_one_line_naming_what_to_add(granted, needed, missing):
    message = missing_scope(granted, needed)
    if not missing:
        assert message is None
        return
    assert "\n" not in message and f"`{needed}`" in message and "hf_oauth_scopes" in message
    assert "sign out and in again" in message


def test_a_read_only_mounted_model_is_a_base_a_public_studio_may_read(tmp_path):
    mounted = tmp_path / "models" / "wan"
    (mounted / "transformer").mkdir(parents=True)
    (mounted / "model_index.json").write_text("{}")
    mounted.chmod(0o555)
    try:
        access = access_from_env(tmp_path / "data", True, {"DFD_STUDIO_ALLOWED_PATHS": str(tmp_path / "models")})
        assert access.check_path(str(mounted), "base model") == mounted.resolve()
        with pytest.raises(ValueError, match="outside the folders"):
            access_from_env(tmp_path / "data", True, {}).check_path(str(mounted), "base model")
    finally:
        mounted.chmod(0o755)
