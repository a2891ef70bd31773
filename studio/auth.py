"""Who may use the studio: a shared password whose repeated failures are slowed down, or Sign in with
Hugging Face, optionally restricted to chosen users and organisations.

    DFD_STUDIO_PASSWORD (and DFD_STUDIO_USER, default "dfd")   a login form with one shared password
                                                                 of at least MIN_PASSWORD characters
    DFD_STUDIO_ALLOWED_HF=alice,my-org                          only these HF users / members of these orgs
    DFD_STUDIO_ALLOWED_HF=*                                     any signed-in Hugging Face user
    DFD_STUDIO_OPEN=1                                           a public studio with no login (limited)

A public studio (studio/access.py is_public) refuses to start with none of these: strangers would
otherwise act with the owner's rights. Guessing is slowed per client and name (studio/login_throttle.py),
so a stranger cannot lock the owner out. docs/security.md has the threat model.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from .login_throttle import LoginThrottle, current_client

log = logging.getLogger("dfd.studio.auth")

MIN_PASSWORD = 12
GATE_TTL_SECONDS = 300.0  # a user removed from an org loses access within this time
GATE_MEMO_SIZE = 1024
ANY_HF_USER = "*"


class PasswordLogin:
    """gradio's `auth` callable: (user, password) -> bool, with the failures throttled per client and name
    (the client is the one studio.login_throttle.ClientAddress saw for this /login request)."""

    def __init__(self, user: str, password: str, throttle: LoginThrottle | None = None):
        if len(password) < MIN_PASSWORD:
            raise ValueError(
                f"DFD_STUDIO_PASSWORD has {len(password)} characters; use at least {MIN_PASSWORD} "
                "(a long random one, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(18))'`)"
            )
        self.user, self._password = user, password
        self.throttle = throttle or LoginThrottle()

    def __call__(self, user: str, password: str, client: str | None = None) -> bool:
        user, client = (user or "").strip(), client or current_client()
        if self.throttle.locked_for(client, user) > 0:  # refused unchecked: guessing gets no faster
            return False
        right = hmac.compare_digest(user.encode(), self.user.encode()) & hmac.compare_digest(
            (password or "").encode(), self._password.encode()
        )
        if right:
            self.throttle.succeeded(client, user)
        else:
            self.throttle.failed(client, user)
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
    if ANY_HF_USER in allowed:
        return True
    return bool({username.lower(), *(o.lower() for o in orgs)} & allowed)


def orgs_of(userinfo: dict, token: str | None, whoami: Callable[[str], dict] | None = None) -> list[str] | None:
    """The organisations of a signed-in user: the OpenID userinfo's `orgs` when the Hub sent them,
    else the token's whoami (as gradio's OAuth guide does); None when the Hub could not be asked."""
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
        return None


def hf_gate(
    allowed: frozenset[str], whoami: Callable[[str], dict] | None = None, clock: Callable[[], float] = time.monotonic
):
    """gradio's `auth_dependency`: the request's signed-in HF user name when allowed, else None (401).
    Decisions are remembered for GATE_TTL_SECONDS (at most GATE_MEMO_SIZE of them); a failed org lookup is
    refused this once and asked again on the next request."""
    memo: OrderedDict[str, tuple[bool, float]] = OrderedDict()

    def gate(request) -> str | None:
        info = request.session.get("oauth_info") if "session" in request.scope else None
        if not info:
            return None
        userinfo, token = info.get("userinfo") or {}, info.get("access_token")
        username = userinfo.get("preferred_username")
        key = hashlib.sha256(f"{username}\0{token}".encode()).hexdigest()  # no token kept in memory
        remembered = memo.get(key)
        if remembered is not None and clock() - remembered[1] < GATE_TTL_SECONDS:
            return username if remembered[0] else None
        if ANY_HF_USER in allowed:
            return username or None
        orgs = orgs_of(userinfo, token, whoami)
        if orgs is None:
            return None
        decision = hf_user_allowed(username, orgs, allowed)
        memo.pop(key, None)
        memo[key] = (decision, clock())
        while len(memo) > GATE_MEMO_SIZE:
            memo.popitem(last=False)
        if not decision:
            log.warning("studio refused Hugging Face user %r: not in DFD_STUDIO_ALLOWED_HF", username)
        return username if decision else None

    return gate


HF_LOGIN_MESSAGE = (
    "This studio is open to chosen Hugging Face users and organisations: "
    '<a href="/login/huggingface">sign in with Hugging Face</a>.'
)


def open_mode(environ=None) -> bool:
    """DFD_STUDIO_OPEN=1: the owner chose a public studio with no login (docs/security.md says what it may do)."""
    environ = os.environ if environ is None else environ
    return environ.get("DFD_STUDIO_OPEN", "").strip().lower() in ("1", "true", "yes")


def launch_auth(environ=None, public: bool = False) -> dict:
    """demo.launch's login arguments for the environment: {} (no login), a password login, or the HF
    gate. Raises ValueError when both are asked for, the HF gate where no Sign in with HF exists, a
    password under MIN_PASSWORD characters, or a public studio with no login and no DFD_STUDIO_OPEN=1."""
    environ = os.environ if environ is None else environ
    password, allowed = auth_from_env(environ), allowed_hf_from_env(environ)
    if password and allowed:
        raise ValueError("set DFD_STUDIO_PASSWORD or DFD_STUDIO_ALLOWED_HF, not both: one login at a time")
    if allowed:
        if not (environ.get("SPACE_ID") and environ.get("OAUTH_CLIENT_ID")):
            raise ValueError(
                "DFD_STUDIO_ALLOWED_HF needs Sign in with Hugging Face: run on a Space with "
                "hf_oauth: true in the README front matter, or use DFD_STUDIO_PASSWORD"
            )
        return {"auth_dependency": hf_gate(allowed), "auth_message": HF_LOGIN_MESSAGE}
    if password:
        return {"auth": password}
    if public and not open_mode(environ):
        raise ValueError(
            "this studio is public (a Space, a share link or a host other than 127.0.0.1) and has no "
            "login: set DFD_STUDIO_ALLOWED_HF (your name, your orgs, or * for any Hugging Face user), "
            f"or DFD_STUDIO_PASSWORD ({MIN_PASSWORD}+ characters), or DFD_STUDIO_OPEN=1 to open it to "
            "anyone with the limits of docs/security.md"
        )
    return {}


# --- Sign in with Hugging Face's scopes: what the visitor's token may do ------------------------------------

PUBLISH_SCOPE = "contribute-repos"  # create repos, and write to those this app created: all Publish needs
JOBS_SCOPE = "jobs"  # run HF Jobs for the signed-in user (training on the Hub's GPUs, at their cost)
WIDER_SCOPES = {PUBLISH_SCOPE: ("manage-repos",)}  # scopes that also grant it (manage-repos can delete, too)
SCOPE_USES = {PUBLISH_SCOPE: "publish a student", JOBS_SCOPE: "train on HF Jobs"}


def granted_scopes(scope: str | None) -> frozenset[str]:
    """The scopes of a Sign in with Hugging Face token: its `scope` (gradio's OAuthToken.scope, the session's
    oauth_info["scope"]) is space-separated."""
    return frozenset((scope or "").split())


def missing_scope(scope: str | None, needed: str) -> str | None:
    """None when the token may do what `needed` allows, else one line saying what to add and where."""
    have = granted_scopes(scope)
    if needed in have or any(wider in have for wider in WIDER_SCOPES.get(needed, ())):
        return None
    return (
        f"to {SCOPE_USES.get(needed, 'do this')} the sign-in needs the `{needed}` scope: add it under "
        f"hf_oauth_scopes in the Space's README front matter, then sign out and in again"
    )
