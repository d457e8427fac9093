"""Issue and verify the stack's JWTs (HS256, PyJWT)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from services.common.settings import JWT_AUDIENCE, JWT_ISSUER

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "role", "iat", "exp", "iss", "aud", "jti"]
# Small allowance for clocks of two processes on one machine drifting apart.
LEEWAY_SECONDS = 5


class TokenError(Exception):
    """A token is missing, malformed, forged, expired or meant for someone else."""


@dataclass(frozen=True)
class Identity:
    """The user a verified token speaks for."""

    username: str
    role: str
    claims: dict

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def issue_token(secret: str, username: str, role: str, lifetime_seconds: int) -> str:
    now = int(time.time())
    claims = {
        "sub": username,
        "role": role,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_seconds,
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Identity:
    """Verify signature, expiry, issuer and audience; raise TokenError saying why."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=JWT_AUDIENCE,
            issuer=JWT_ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenError("token not yet valid") from None
    except jwt.InvalidAudienceError:
        raise TokenError("wrong audience") from None
    except jwt.InvalidIssuerError:
        raise TokenError("wrong issuer") from None
    except jwt.InvalidSignatureError:
        raise TokenError("bad signature") from None
    except jwt.MissingRequiredClaimError as error:
        raise TokenError(f"missing claim {error.claim}") from None
    except jwt.InvalidAlgorithmError:
        raise TokenError("algorithm not allowed") from None
    except jwt.PyJWTError:
        raise TokenError("malformed token") from None
    return Identity(username=str(claims["sub"]), role=str(claims["role"]), claims=claims)


def bearer_token(header_value: str | None) -> str | None:
    """Return the token of an `Authorization: Bearer ...` value, or None."""
    if not header_value:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()

