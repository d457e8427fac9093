"""Tests of the auth service, run as a real process on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from conftest import ROOT, Project, RunningService, make_project
from services.auth.throttle import LoginThrottle
from services.common.settings import JWT_AUDIENCE, JWT_ISSUER

DEMO_ROLES = {"vishal": "developer", "happy": "devops", "alex": "developer"}
# Limits of the throttled service: small, so a test reaches them quickly.
TEST_MAX_FAILURES = 3
TEST_WINDOW_SECONDS = 2
# 0.01 hours, the lifetime the throttled service issues.
SHORT_LIFETIME_SECONDS = 36
# Upper bound for waiting out the throttle window, well above its 2 s.
WINDOW_WAIT_SECONDS = 15.0


@dataclass
class AuthServer:
    """A running auth service and the settings it was started with."""

    service: RunningService
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.service.url

    def log(self) -> str:
        return self.service.log()


def start_auth(project: Project, **extra_env: str) -> AuthServer:
    service = project.start("auth", **extra_env)
    return AuthServer(service, project.process_env(**extra_env))


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """One auth service with default limits, shared by the module's tests."""
    server = start_auth(make_project(tmp_path_factory.mktemp("auth")))
    yield server
    server.service.stop()


@pytest.fixture(scope="module")
def limited_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """An auth service with a small failure limit, a short window and lifetime."""
    server = start_auth(
        make_project(tmp_path_factory.mktemp("limited-auth")),
        JARVIS_LOGIN_MAX_FAILURES=str(TEST_MAX_FAILURES),
        JARVIS_LOGIN_WINDOW_SECONDS=str(TEST_WINDOW_SECONDS),
        JWT_EXPIRATION_HOURS="0.01",
    )
    yield server
    server.service.stop()


def post_login(url: str, username: str, password: str) -> httpx.Response:
    body = {"username": username, "password": password}
    return httpx.post(f"{url}/auth/login", json=body, timeout=10)


def get_verify(url: str, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{url}/auth/verify", headers=headers, timeout=10)


def make_claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "vishal",
        "role": "developer",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return claims


def test_health_reports_auth(auth: AuthServer) -> None:
    response = httpx.get(f"{auth.url}/health", timeout=5)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "auth"}


def test_login_issues_token_for_each_user(auth: AuthServer) -> None:
    env = auth.env
    accounts = {name: env["JARVIS_DEMO_PASSWORD"] for name in DEMO_ROLES}
    accounts["admin"] = env["JARVIS_ADMIN_PASSWORD"]
    roles = dict(DEMO_ROLES, admin="admin")

    for username, password in accounts.items():
        response = post_login(auth.url, username, password)
        body = response.json()
        claims = jwt.decode(
            body["access_token"],
            env["JWT_SECRET_KEY"],
            algorithms=["HS256"],
            audience=JWT_AUDIENCE,
            issuer=JWT_ISSUER,
        )

        assert response.status_code == 200, username
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 24 * 3600
        assert body["user"] == {"username": username, "role": roles[username]}
        assert claims["sub"] == username
        assert claims["role"] == roles[username]
        assert claims["exp"] - claims["iat"] == 24 * 3600
        assert set(claims) >= {"nbf", "jti"}


def test_login_wrong_password_401(auth: AuthServer) -> None:
    response = post_login(auth.url, "happy", "not-the-password")

    assert response.status_code == 401
    assert response.json() == {"detail": "invalid username or password"}


def test_login_unknown_user_401(auth: AuthServer) -> None:
    env = auth.env
    response = post_login(auth.url, "mallory", env["JARVIS_DEMO_PASSWORD"])

    assert response.status_code == 401
    assert response.json() == {"detail": "invalid username or password"}


@pytest.mark.parametrize(
    "body",
    [
        {"username": "alex"},
        {"password": "secret-in-body"},
        {"username": "", "password": "secret-in-body"},
        {"username": ["alex"], "password": "secret-in-body"},
        "not json at all",
    ],
)
def test_login_malformed_body_422(auth: AuthServer, body: object) -> None:
    if isinstance(body, str):
        response = httpx.post(
            f"{auth.url}/auth/login",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
    else:
        response = httpx.post(f"{auth.url}/auth/login", json=body, timeout=10)

    assert response.status_code == 422
    assert "secret-in-body" not in response.text


def test_verify_returns_claims(auth: AuthServer) -> None:
    env = auth.env
    login = post_login(auth.url, "alex", env["JARVIS_DEMO_PASSWORD"])
    token = login.json()["access_token"]

    response = get_verify(auth.url, token)
    body = response.json()

    assert response.status_code == 200
    assert body["valid"] is True
    assert body["claims"]["sub"] == "alex"
    assert body["claims"]["role"] == "developer"
    assert body["claims"]["iss"] == JWT_ISSUER
    assert body["claims"]["aud"] == JWT_AUDIENCE


def forged_tokens(secret: str) -> dict[str, tuple[str, str]]:
    """Return bad tokens by case name, each with the reason the service must give."""
    now = int(time.time())
    other_key = "another-key-of-at-least-32-bytes-long!"
    return {
        "expired": (
            jwt.encode(
                make_claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600),
                secret,
                algorithm="HS256",
            ),
            "token expired",
        ),
        "forged": (
            jwt.encode(make_claims(), other_key, algorithm="HS256"),
            "bad signature",
        ),
        "wrong_audience": (
            jwt.encode(make_claims(aud="someone-else"), secret, algorithm="HS256"),
            "wrong audience",
        ),
        "wrong_issuer": (
            jwt.encode(make_claims(iss="someone-else"), secret, algorithm="HS256"),
            "wrong issuer",
        ),
        "alg_none": (
            jwt.encode(make_claims(), None, algorithm="none"),
            "algorithm not allowed",
        ),
        "not_yet_valid": (
            jwt.encode(make_claims(nbf=now + 3600), secret, algorithm="HS256"),
            "token not yet valid",
        ),
        "unknown_user": (
            jwt.encode(make_claims(sub="mallory"), secret, algorithm="HS256"),
            "unknown user",
        ),
        "malformed": ("not.a.jwt", "malformed token"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "forged",
        "wrong_audience",
        "wrong_issuer",
        "alg_none",
        "not_yet_valid",
        "unknown_user",
        "malformed",
    ],
)
def test_verify_rejects_bad_token(auth: AuthServer, case: str) -> None:
    token, reason = forged_tokens(auth.env["JWT_SECRET_KEY"])[case]

    response = get_verify(auth.url, token)

    assert response.status_code == 401
    assert response.json() == {"detail": reason}
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_verify_rejects_missing_header(auth: AuthServer) -> None:
    response = get_verify(auth.url, None)

    assert response.status_code == 401
    assert response.json() == {"detail": "missing bearer token"}


def test_verify_rejects_basic_scheme(auth: AuthServer) -> None:
    response = httpx.get(
        f"{auth.url}/auth/verify",
        headers={"Authorization": "Basic dmlzaGFsOmRlbW8xMjM="},
        timeout=10,
    )

    assert response.status_code == 401
    assert response.json() == {"detail": "missing bearer token"}


def test_log_has_no_secrets(auth: AuthServer) -> None:
    env = auth.env
    login = post_login(auth.url, "vishal", env["JARVIS_DEMO_PASSWORD"])
    token = login.json()["access_token"]
    post_login(auth.url, "vishal", "typo-password-123")

    log = auth.log()

    assert "Issued token for vishal (role developer)" in log
    assert "Rejected login for vishal: invalid password" in log
    assert token not in log
    assert env["JARVIS_DEMO_PASSWORD"] not in log
    assert "typo-password-123" not in log
    assert env["JWT_SECRET_KEY"] not in log


def test_login_throttled_after_max_failures(limited_auth: AuthServer) -> None:
    for _ in range(TEST_MAX_FAILURES):
        assert post_login(limited_auth.url, "happy", "wrong").status_code == 401

    throttled = post_login(limited_auth.url, "happy", "wrong")
    retry_after = int(throttled.headers["Retry-After"])

    assert throttled.status_code == 429
    assert 1 <= retry_after <= TEST_WINDOW_SECONDS
    assert "too many failed logins for happy" in throttled.json()["detail"]
    assert "Locked logins for happy after 3 failures" in limited_auth.log()


def test_login_throttle_blocks_right_password(limited_auth: AuthServer) -> None:
    password = limited_auth.env["JARVIS_DEMO_PASSWORD"]
    for _ in range(TEST_MAX_FAILURES):
        post_login(limited_auth.url, "alex", "wrong")

    assert post_login(limited_auth.url, "alex", password).status_code == 429

    deadline = time.monotonic() + WINDOW_WAIT_SECONDS
    response = post_login(limited_auth.url, "alex", password)
    while response.status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.5)
        response = post_login(limited_auth.url, "alex", password)
    assert response.status_code == 200


def test_login_success_resets_failures(limited_auth: AuthServer) -> None:
    password = limited_auth.env["JARVIS_DEMO_PASSWORD"]
    for _ in range(TEST_MAX_FAILURES - 1):
        assert post_login(limited_auth.url, "vishal", "wrong").status_code == 401
    assert post_login(limited_auth.url, "vishal", password).status_code == 200

    for _ in range(TEST_MAX_FAILURES - 1):
        assert post_login(limited_auth.url, "vishal", "wrong").status_code == 401
    assert post_login(limited_auth.url, "vishal", password).status_code == 200


def test_login_throttle_is_per_username(limited_auth: AuthServer) -> None:
    for _ in range(TEST_MAX_FAILURES):
        post_login(limited_auth.url, "ghost", "wrong")

    assert post_login(limited_auth.url, "ghost", "wrong").status_code == 429
    assert post_login(limited_auth.url, "admin", "wrong").status_code == 401


def test_login_lifetime_from_env(limited_auth: AuthServer) -> None:
    response = post_login(
        limited_auth.url, "admin", limited_auth.env["JARVIS_ADMIN_PASSWORD"]
    )
    token = response.json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})

    assert response.json()["expires_in"] == SHORT_LIFETIME_SECONDS
    assert claims["exp"] - claims["iat"] == SHORT_LIFETIME_SECONDS


def run_auth_until_exit(
    tmp_path: Path, **overrides: str
) -> subprocess.CompletedProcess[str]:
    """Start the auth service with bad settings; it must exit on its own."""
    project = make_project(tmp_path)
    return subprocess.run(
        [sys.executable, "-m", "services.auth"],
        cwd=ROOT,
        env=project.process_env(**overrides),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_startup_fails_without_secret(tmp_path: Path) -> None:
    result = run_auth_until_exit(tmp_path, JWT_SECRET_KEY="")

    assert result.returncode == 3
    assert "Failed to start auth: missing JWT_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_startup_fails_with_short_secret(tmp_path: Path) -> None:
    result = run_auth_until_exit(tmp_path, JWT_SECRET_KEY="short-key-123")

    assert result.returncode == 3
    assert "invalid JWT_SECRET_KEY: 13 bytes, at least 32 needed" in result.stderr
    assert "short-key-123" not in result.stderr


@pytest.mark.parametrize("hours", ["soon", "0", "-1", "nan"])
def test_startup_fails_with_bad_lifetime(tmp_path: Path, hours: str) -> None:
    result = run_auth_until_exit(tmp_path, JWT_EXPIRATION_HOURS=hours)

    assert result.returncode == 3
    assert f"invalid JWT_EXPIRATION_HOURS: {hours!r}" in result.stderr


def test_startup_fails_with_bad_limit(tmp_path: Path) -> None:
    result = run_auth_until_exit(tmp_path, JARVIS_LOGIN_MAX_FAILURES="2.5")

    assert result.returncode == 3
    assert "invalid JARVIS_LOGIN_MAX_FAILURES" in result.stderr


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_window_slides() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(max_failures=2, window_seconds=60, clock=clock)
    for _ in range(2):
        assert throttle.start_attempt("vishal") is None
        throttle.finish_attempt("vishal", succeeded=False)
        clock.now += 10

    assert throttle.start_attempt("vishal") == 40
    clock.now += 40
    assert throttle.start_attempt("vishal") is None


def test_throttle_counts_pending_attempts() -> None:
    throttle = LoginThrottle(max_failures=2, window_seconds=60, clock=FakeClock())

    assert throttle.start_attempt("alex") is None
    assert throttle.start_attempt("alex") is None
    assert throttle.start_attempt("alex") == 1
    throttle.finish_attempt("alex", succeeded=True)
    throttle.finish_attempt("alex", succeeded=True)
    assert throttle.start_attempt("alex") is None


def test_throttle_reports_lockout_once() -> None:
    throttle = LoginThrottle(max_failures=2, window_seconds=60, clock=FakeClock())
    throttle.start_attempt("happy")
    first = throttle.finish_attempt("happy", succeeded=False)
    throttle.start_attempt("happy")
    second = throttle.finish_attempt("happy", succeeded=False)

    assert first is False
    assert second is True
