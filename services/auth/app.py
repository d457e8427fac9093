"""The auth service: logs users in and verifies the JWTs it issues.

Endpoints: `POST /auth/login` returns a bearer token, `GET /auth/verify` checks
one, `GET /health` reports liveness. Failed logins are throttled per username.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.auth.throttle import LoginThrottle, throttle_from_env
from services.auth.users import UserDirectory, build_directory
from services.common.settings import ConfigError, ServiceSettings
from services.common.tokens import TokenError, bearer_token, issue_token, verify_token

DEFAULT_EXPIRATION_HOURS = 24.0
# Longer usernames and passwords are typos or abuse. The password cap also
# bounds the work of one argon2 verification.
MAX_USERNAME_LENGTH = 64
MAX_PASSWORD_LENGTH = 1024
INVALID_CREDENTIALS = "invalid username or password"
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}

logger = logging.getLogger(__name__)


class LoginRequest(BaseModel):
    """Body of `POST /auth/login`."""

    username: str = Field(min_length=1, max_length=MAX_USERNAME_LENGTH)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


def token_lifetime_seconds(env: dict[str, str]) -> int:
    """Read JWT_EXPIRATION_HOURS (a positive number, fractions allowed) as seconds."""
    raw = env.get("JWT_EXPIRATION_HOURS") or str(DEFAULT_EXPIRATION_HOURS)
    try:
        hours = float(raw)
    except ValueError:
        raise ConfigError(
            f"invalid JWT_EXPIRATION_HOURS: {raw!r} is not a number of hours"
        ) from None
    if not math.isfinite(hours) or hours * 3600 < 1:
        raise ConfigError(
            f"invalid JWT_EXPIRATION_HOURS: {raw!r}, expected at least 1 second "
            "(0.0003 hours)"
        )
    return round(hours * 3600)


def build_app(settings: ServiceSettings) -> FastAPI:
    """Build the auth app, raising ConfigError for a missing or invalid setting."""
    secret = settings.jwt_secret()
    lifetime = token_lifetime_seconds(settings.env)
    throttle = throttle_from_env(settings.env)
    users = build_directory(settings.env)
    logger.info(
        "Loaded %d users, tokens last %d s, logins lock after %d failures in %g s",
        len(users.usernames()),
        lifetime,
        throttle.max_failures,
        throttle.window_seconds,
    )

    app = FastAPI(title="jarvis auth", docs_url=None, redoc_url=None)

    app.add_exception_handler(RequestValidationError, _reject_invalid_body)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "auth"}

    # A sync endpoint, so FastAPI runs the argon2 verification in its thread
    # pool instead of blocking the event loop.
    @app.post("/auth/login", response_model=None)
    def login(request: LoginRequest) -> dict[str, Any] | JSONResponse:
        return _login(request, users, throttle, secret, lifetime)

    @app.get("/auth/verify")
    def verify(
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        token = bearer_token(authorization)
        if token is None:
            raise HTTPException(401, "missing bearer token", headers=BEARER_CHALLENGE)
        try:
            identity = verify_token(secret, token)
        except TokenError as error:
            raise HTTPException(401, str(error), headers=BEARER_CHALLENGE) from None
        if users.get(identity.username) is None:
            raise HTTPException(401, "unknown user", headers=BEARER_CHALLENGE)
        return {"valid": True, "claims": identity.claims}

    return app


def _login(
    request: LoginRequest,
    users: UserDirectory,
    throttle: LoginThrottle,
    secret: str,
    lifetime: int,
) -> dict[str, Any] | JSONResponse:
    name = _printable(request.username)
    retry_after = throttle.start_attempt(request.username)
    if retry_after is not None:
        logger.debug("Rejected login for %s: throttled for %d s", name, retry_after)
        return JSONResponse(
            status_code=429,
            content={
                "detail": f"too many failed logins for {request.username}; "
                f"retry in {retry_after} s"
            },
            headers={"Retry-After": str(retry_after)},
        )

    user = None
    try:
        user, reason = users.authenticate(request.username, request.password)
    finally:
        locked = throttle.finish_attempt(request.username, succeeded=user is not None)
    if user is None:
        logger.warning("Rejected login for %s: %s", name, reason)
        if locked:
            logger.warning(
                "Locked logins for %s after %d failures within %g s",
                name,
                throttle.max_failures,
                throttle.window_seconds,
            )
        raise HTTPException(401, INVALID_CREDENTIALS)

    token = issue_token(secret, user.username, user.role, lifetime)
    logger.info("Issued token for %s (role %s)", user.username, user.role)
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": lifetime,
        "user": {"username": user.username, "role": user.role},
    }


async def _reject_invalid_body(
    request: Request, error: Exception
) -> JSONResponse:
    """Return 422 with the field errors but without the input values.

    FastAPI echoes the offending input by default, which for a login body can
    be the password.
    """
    errors = error.errors() if isinstance(error, RequestValidationError) else []
    details = [
        {"loc": list(item.get("loc", ())), "msg": item.get("msg", "invalid value")}
        for item in errors
    ]
    return JSONResponse(status_code=422, content={"detail": details})


def _printable(username: str) -> str:
    """Return the username fit for one log line (quoted if it has odd characters)."""
    if username.isprintable() and " " not in username:
        return username
    return repr(username)
