"""Who may use the studio: a shared password whose repeated failures are slowed down, or Sign in with
Hugging Face restricted to chosen users and organisations.

    DFD_STUDIO_PASSWORD (and DFD_STUDIO_USER, default "dfd")   a login form with one shared password
    DFD_STUDIO_ALLOWED_HF=alice,my-org                          only these HF users / members of these orgs

A wrong password costs nothing to try, so after a few failures in a row a user name is locked for a
time that doubles with each further failure (up to a minute); while locked every attempt is refused
without being checked, so guessing gets no faster by trying harder. Each failure is logged by user
name and count, never with the password.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

log = logging.getLogger("dfd.studio.auth")

FREE_FAILURES = 3  # failures in a row answered without delay (typos)
MAX_LOCK_SECONDS = 60.0


@dataclass
class _Record:
    failures: int = 0
    locked_until: float = 0.0


@dataclass
class LoginThrottle:
    """Exponential backoff per user name: after FREE_FAILURES failures in a row, the n-th failure locks
    the name for 2^(n - FREE_FAILURES) s (at most MAX_LOCK_SECONDS). A success clears the record."""

    clock: Callable[[], float] = time.monotonic
    records: dict[str, _Record] = field(default_factory=dict)

    def locked_for(self, user: str) -> float:
        """Seconds until `user` may try again (0 when not locked)."""
        record = self.records.get(user)
        return max(0.0, record.locked_until - self.clock()) if record else 0.0

    def failed(self, user: str) -> _Record:
        record = self.records.setdefault(user, _Record())
        record.failures += 1
        if record.failures >= FREE_FAILURES:
            wait = min(MAX_LOCK_SECONDS, 2.0 ** (record.failures - FREE_FAILURES))
            record.locked_until = self.clock() + wait
        log.warning("studio login failed for user %r (%d failures in a row)", user, record.failures)
        return record

    def succeeded(self, user: str) -> None:
        self.records.pop(user, None)


class PasswordLogin:
    """gradio's `auth` callable: (user, password) -> bool, with the failures throttled per user name."""

    def __init__(self, user: str, password: str, throttle: LoginThrottle | None = None):
        self.user, self._password = user, password
        self.throttle = throttle or LoginThrottle()

    def __call__(self, user: str, password: str) -> bool:
        user = (user or "").strip()
        if self.throttle.locked_for(user) > 0:
            log.warning("studio login refused for user %r: locked for %.0f s after repeated failures",
                        user, self.throttle.locked_for(user))
            return False
        right = hmac.compare_digest(user.encode(), self.user.encode()) & hmac.compare_digest(
            (password or "").encode(), self._password.encode())
        if right:
            self.throttle.succeeded(user)
        else:
            self.throttle.failed(user)
        return bool(right)


def auth_from_env(environ=None) -> PasswordLogin | None:
    """Optional login: DFD_STUDIO_PASSWORD (and DFD_STUDIO_USER, default 'dfd') turn it on."""
    environ = os.environ if environ is None else environ
    password = environ.get("DFD_STUDIO_PASSWORD")
    return PasswordLogin(environ.get("DFD_STUDIO_USER", "dfd"), password) if password else None


# --- Sign in with Hugging Face, restricted to chosen users and organisations ---------------------------

def allowed_hf_from_env(environ=None) -> frozenset[str]:
    """DFD_STUDIO_ALLOWED_HF as a set of lower-case user and organisation names (empty: no restriction)."""
    environ = os.environ if environ is None else environ
    return frozenset(n.strip().lower() for n in environ.get("DFD_STUDIO_ALLOWED_HF", "").split(",") if n.strip())


def hf_user_allowed(username: str | None, orgs: Iterable[str], allowed: frozenset[str]) -> bool:
    """Is a signed-in user let in: their own name or one of their organisations is listed."""
    if not username:
        return False
    return bool({username.lower(), *(o.lower() for o in orgs)} & allowed)


def orgs_of(userinfo: dict, token: str | None, whoami: Callable[[str], dict] | None = None) -> list[str]:
    """The organisations of a signed-in user: the OpenID userinfo's `orgs` when the Hub sent them,
    else the token's whoami (as gradio's OAuth guide does)."""
    listed = userinfo.get("orgs")
    if listed is not None:
        return [o.get("preferred_username") or o.get("name", "") for o in listed]
    if not token:
        return []
    if whoami is None:
        from huggingface_hub import whoami
    try:
        return [o.get("name", "") for o in whoami(token).get("orgs", [])]
    except Exception as err:  # an expired token, the Hub unreachable: no org membership can be shown
        log.warning("could not read the organisations of %r: %s", userinfo.get("preferred_username"), err)
        return []


def hf_gate(allowed: frozenset[str], whoami: Callable[[str], dict] | None = None):
    """gradio's `auth_dependency`: the request's signed-in HF user name when allowed, else None (401)."""
    memo: dict[str, bool] = {}

    def gate(request) -> str | None:
        info = request.session.get("oauth_info") if "session" in request.scope else None
        if not info:
            return None
        userinfo, token = info.get("userinfo") or {}, info.get("access_token")
        username = userinfo.get("preferred_username")
        key = hashlib.sha256(f"{username}\0{token}".encode()).hexdigest()  # no token kept in memory
        if key not in memo:
            memo[key] = hf_user_allowed(username, orgs_of(userinfo, token, whoami), allowed)
            if not memo[key]:
                log.warning("studio refused Hugging Face user %r: not in DFD_STUDIO_ALLOWED_HF", username)
        return username if memo[key] else None

    return gate


HF_LOGIN_MESSAGE = ('This studio is open to chosen Hugging Face users and organisations: '
                    '<a href="/login/huggingface">sign in with Hugging Face</a>.')


def launch_auth(environ=None) -> dict:
    """demo.launch's login arguments for the environment: {} (no login), a password login, or the HF
    gate. Raises ValueError when both are asked for, or the HF gate where no Sign in with HF exists."""
    environ = os.environ if environ is None else environ
    password, allowed = auth_from_env(environ), allowed_hf_from_env(environ)
    if password and allowed:
        raise ValueError("set DFD_STUDIO_PASSWORD or DFD_STUDIO_ALLOWED_HF, not both: one login at a time")
    if allowed:
        if not (environ.get("SPACE_ID") and environ.get("OAUTH_CLIENT_ID")):
            raise ValueError("DFD_STUDIO_ALLOWED_HF needs Sign in with Hugging Face: run on a Space with "
                             "hf_oauth: true in the README front matter, or use DFD_STUDIO_PASSWORD")
        return {"auth_dependency": hf_gate(allowed), "auth_message": HF_LOGIN_MESSAGE}
    return {"auth": password} if password else {}
