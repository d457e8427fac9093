"""The gateway's JWT: log in at the auth service, store it in `.env`, inspect it.

The gateway sends JWT_TOKEN to the agents on every call it relays. This module
decodes the token without verifying its signature, only to read who it is for
and when it expires. Whether it is still valid is checked by the auth service.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from jarvisctl.config import Settings
from jarvisctl.envfile import read_env, update_env
from jarvisctl.errors import LoginError

TOKEN_KEY = "JWT_TOKEN"
ADMIN_USER = "admin"
ADMIN_PASSWORD_KEY = "JARVIS_ADMIN_PASSWORD"
# Every user other than admin is a demo user sharing one password.
DEMO_PASSWORD_KEY = "JARVIS_DEMO_PASSWORD"
# Refresh once this share of the token's lifetime has passed, so a running
# gateway never relays an expired token.
REFRESH_AT_LIFETIME_SHARE = 0.8
# Argon2 verification on a loaded 2-core machine takes well under a second.
LOGIN_TIMEOUT_SECONDS = 10.0
VERIFY_TIMEOUT_SECONDS = 5.0
MASK_VISIBLE_CHARS = 6

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenInfo:
    """The user and role of a JWT and its issue and expiry times (Unix seconds)."""

    username: str
    role: str
    issued_at: float | None
    expires_at: float | None
    masked: str

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or time.time())


@dataclass(frozen=True)
class TokenCheck:
    """The auth service's verdict on a token: True, False, or None when down."""

    accepted: bool | None
    reason: str | None = None


def mask_token(token: str) -> str:
    """Return the first characters of `token` followed by an ellipsis."""
    return token[:MASK_VISIBLE_CHARS] + "…"


def decode_claims(token: str) -> dict[str, Any] | None:
    """Return the claims of `token` without verifying it, or None if undecodable."""
    # Imported here because PyJWT loads the cryptography package, tens of
    # milliseconds that callers of current_token or login alone do not need.
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


def token_info(token: str) -> TokenInfo | None:
    """Describe `token` from its claims; None when it is not a decodable JWT."""
    claims = decode_claims(token)
    if claims is None:
        return None
    return TokenInfo(
        username=str(claims.get("sub", "?")),
        role=str(claims.get("role", "?")),
        issued_at=_number(claims.get("iat")),
        expires_at=_number(claims.get("exp")),
        masked=mask_token(token),
    )


def current_token(settings: Settings) -> str:
    """Return JWT_TOKEN as written in `.env` now, else from the environment.

    `.env` comes first because `refresh_token` writes there, possibly after
    `settings` was loaded.
    """
    from_file = read_env(settings.env_file).get(TOKEN_KEY, "").strip()
    return from_file or (settings.env.get(TOKEN_KEY) or "").strip()


def token_needs_refresh(settings: Settings, now: float | None = None) -> bool:
    """Return True when JWT_TOKEN is missing, undecodable, expired or ageing.

    Ageing means at least 80 % of the time from `iat` to `exp` has passed.
    """
    info = token_info(current_token(settings))
    if info is None or info.expires_at is None:
        return True
    now = now or time.time()
    if info.issued_at is None or info.expires_at <= info.issued_at:
        return info.expires_at <= now
    lifetime = info.expires_at - info.issued_at
    return now >= info.issued_at + REFRESH_AT_LIFETIME_SHARE * lifetime


def default_password(settings: Settings, username: str) -> str | None:
    """Return the password .env holds for `username`, or None."""
    key = ADMIN_PASSWORD_KEY if username == ADMIN_USER else DEMO_PASSWORD_KEY
    return settings.env.get(key) or None


def login(settings: Settings, username: str, password: str) -> str:
    """Log in at the auth service and return the JWT; raise LoginError."""
    import httpx

    auth_url = settings.url("auth")
    try:
        response = httpx.post(
            f"{auth_url}/auth/login",
            json={"username": username, "password": password},
            timeout=LOGIN_TIMEOUT_SECONDS,
        )
    except httpx.TimeoutException:
        raise LoginError(
            f"login failed: auth service at {auth_url} timed out after "
            f"{LOGIN_TIMEOUT_SECONDS:g} s; check `jarvisctl status`"
        ) from None
    except httpx.HTTPError:
        raise LoginError(
            f"login failed: auth service not reachable at {auth_url}; "
            "run `jarvisctl up`"
        ) from None
    if response.status_code == 401:
        raise LoginError(f"login failed for {username}: invalid username or password")
    if response.status_code != 200:
        detail = _detail(response)
        raise LoginError(
            f"login failed for {username}: auth service returned HTTP "
            f"{response.status_code}: {detail}"
        )
    token = response.json().get("access_token")
    if not isinstance(token, str) or not token:
        raise LoginError(
            f"login failed for {username}: the auth service returned no token"
        )
    return token


def refresh_token(
    settings: Settings, username: str = ADMIN_USER, password: str | None = None
) -> TokenInfo:
    """Log in as `username`, write the JWT to `.env` as JWT_TOKEN, describe it."""
    password = password or default_password(settings, username)
    if not password:
        key = ADMIN_PASSWORD_KEY if username == ADMIN_USER else DEMO_PASSWORD_KEY
        raise LoginError(
            f"login failed for {username}: no password; set {key} in .env or pass "
            "--password-stdin"
        )
    token = login(settings, username, password)
    info = token_info(token)
    if info is None:
        raise LoginError(
            f"login failed for {username}: the auth service returned a token that "
            "is not a JWT"
        )
    update_env(settings.env_file, {TOKEN_KEY: token})
    logger.info(
        "Refreshed %s for %s (role %s), expires at %s",
        TOKEN_KEY,
        info.username,
        info.role,
        _iso(info.expires_at),
    )
    return info


def check_token(settings: Settings, token: str) -> TokenCheck:
    """Ask the auth service whether it accepts `token`."""
    import httpx

    try:
        response = httpx.get(
            f"{settings.url('auth')}/auth/verify",
            headers={"Authorization": f"Bearer {token}"},
            timeout=VERIFY_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as error:
        return TokenCheck(accepted=None, reason=f"auth service not reachable: {error}")
    if response.status_code == 200:
        return TokenCheck(accepted=True)
    return TokenCheck(accepted=False, reason=_detail(response))


def _detail(response: Any) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return str(detail) if detail else response.text[:200] or "no detail"


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _iso(timestamp: float | None) -> str:
    if timestamp is None:
        return "unknown"
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(timestamp))
