"""What the public studio's limit tests share: the Access of a public studio whose owner set `env`."""

from __future__ import annotations

from studio import access_from_env


def public_access(data_dir, **env):
    return access_from_env(data_dir, True, env)
