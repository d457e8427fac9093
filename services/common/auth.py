"""Bearer-JWT authentication of the agents' JSON-RPC endpoint.

A caller's JWT arrives in `Authorization: Bearer`. The gateway sends its own JWT
in `X-Jarvis-Gateway-Token` and may put its master key (not a JWT) into
`Authorization`. The caller's token wins, and the gateway's token counts only
when `Authorization` contains no JWT at all. So a forged or expired caller
token is rejected instead of silently running as the gateway.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Container, Mapping

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from a2a.auth.user import User
from a2a.server.routes import DefaultServerCallContextBuilder
from services.common.headers import GATEWAY_TOKEN_HEADER
from services.common.tokens import (
    Identity,
    TokenError,
    bearer_token,
    verify_token,
)

# Three base64url segments. The signature may be empty, as in `alg: none` tokens,
# so such tokens count as JWTs and are rejected instead of being skipped.
JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")

logger = logging.getLogger(__name__)


class TokenRejected(AuthenticationError):
    """A request carried no valid token; `missing` is true when it sent none."""

    def __init__(self, reason: str, missing: bool) -> None:
        super().__init__(reason)
        self.missing = missing


def is_jwt_shaped(token: str) -> bool:
    return JWT_SHAPE.match(token) is not None


def resolve_identity(secret: str, headers: Mapping[str, str]) -> Identity:
    """Verify the caller's or else the gateway's JWT; raise TokenError saying why."""
    caller_token = bearer_token(headers.get("authorization"))
    if caller_token and is_jwt_shaped(caller_token):
        return verify_token(secret, caller_token)

    gateway_value = headers.get(GATEWAY_TOKEN_HEADER.lower())
    gateway_token = bearer_token(gateway_value) or (gateway_value or "").strip()
    if gateway_token:
        return verify_token(secret, gateway_token)

    if headers.get("authorization"):
        raise TokenError("invalid bearer token: not a JWT")
    raise TokenError("missing bearer token")


class AgentCaller(BaseUser):
    """The verified user behind one request, as a Starlette user."""

    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    @property
    def identity(self) -> Identity:  # type: ignore[override]
        return self._identity

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self._identity.username


class IdentityUser(User):
    """The verified user behind one request, as an A2A SDK user.

    The task store files tasks under `user_name`, so one user cannot read
    another user's task by id.
    """

    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return self.identity.username


class BearerAuthBackend(AuthenticationBackend):
    """Backend that checks the token on protected paths and skips other paths."""

    def __init__(self, secret: str, protected_paths: Container[str]) -> None:
        self._secret = secret
        self._protected_paths = protected_paths

    async def authenticate(
        self, conn: HTTPConnection
    ) -> tuple[AuthCredentials, BaseUser] | None:
        if conn.url.path not in self._protected_paths:
            return None
        try:
            identity = resolve_identity(self._secret, conn.headers)
        except TokenError as error:
            client = conn.client.host if conn.client else "unknown"
            logger.warning("Rejected request from %s: %s", client, error)
            sent = ("authorization", GATEWAY_TOKEN_HEADER)
            missing = not any(conn.headers.get(name) for name in sent)
            raise TokenRejected(str(error), missing) from None
        return AuthCredentials(["authenticated"]), AgentCaller(identity)


def reject_unauthenticated(conn: HTTPConnection, error: Exception) -> Response:
    """Build the 401 response for a request without a valid token.

    As RFC 6750 section 3.1 asks, the challenge names the error only when the
    request sent a token.
    """
    challenge = 'Bearer error="invalid_token"'
    if isinstance(error, TokenRejected) and error.missing:
        challenge = "Bearer"
    return JSONResponse(
        {"error": str(error)}, status_code=401, headers={"WWW-Authenticate": challenge}
    )


class IdentityContextBuilder(DefaultServerCallContextBuilder):
    """Call-context builder that makes the verified identity the call's user."""

    def build_user(self, request: Request) -> User:
        caller = request.scope.get("user")
        if isinstance(caller, AgentCaller):
            return IdentityUser(caller.identity)
        return super().build_user(request)


def call_identity(user: User) -> Identity | None:
    """Return the identity of an A2A call context's user, if it was verified."""
    if isinstance(user, IdentityUser):
        return user.identity
    return None
