"""Tests of the gateway token: refresh against the real auth service, show, age."""

from __future__ import annotations

import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from conftest import (
    Project,
    RunningService,
    agent_token,
    make_project,
    run_cli,
    write_env_file,
)
from jarvisctl.config import Settings
from jarvisctl.envfile import read_env
from jarvisctl.errors import LoginError
from jarvisctl.tokens import (
    current_token,
    decode_claims,
    mask_token,
    refresh_token,
    token_needs_refresh,
)
from services.common.tokens import issue_token

# A .env the way people write them: CRLF endings, `export`, quotes, comments.
HAND_WRITTEN_ENV = (
    "# Local settings\r\n"
    "export AUTH_SERVICE_PORT={auth_port}\r\n"
    'JARVIS_ADMIN_PASSWORD="{admin_password}"\r\n'
    "JWT_TOKEN='old-token'\r\n"
    "\r\n"
    "# Kept below the token\r\n"
    "JARVIS_LOG_LEVEL=DEBUG # inline comment\r\n"
)


@pytest.fixture(scope="module")
def auth_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A project with a running auth service, shared by this module's tests."""
    project = make_project(tmp_path_factory.mktemp("tokens"))
    running: RunningService = project.start("auth")
    try:
        yield project
    finally:
        running.stop()


@pytest.fixture
def settings(auth_project: Project) -> Settings:
    write_env_file(auth_project)
    return Settings(project_dir=auth_project.directory, env=dict(auth_project.env))


def project_env(project: Project, **extra: str) -> dict[str, str]:
    return {**project.env, **extra}


def test_refresh_writes_token_and_mode(settings: Settings) -> None:
    info = refresh_token(settings)
    token = read_env(settings.env_file)["JWT_TOKEN"]
    assert info.username == "admin"
    assert info.role == "admin"
    assert decode_claims(token)["sub"] == "admin"
    assert info.masked == token[:6] + "…"
    assert stat.S_IMODE(settings.env_file.stat().st_mode) == 0o600


def test_refresh_keeps_other_lines(auth_project: Project, settings: Settings) -> None:
    original = HAND_WRITTEN_ENV.format(
        auth_port=auth_project.port("auth"),
        admin_password=auth_project.env["JARVIS_ADMIN_PASSWORD"],
    )
    settings.env_file.write_bytes(original.encode())
    refresh_token(settings)

    before = original.replace("\r\n", "\n").splitlines()
    after = settings.env_file.read_text().replace("\r\n", "\n").splitlines()
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        if old.startswith("JWT_TOKEN="):
            assert new.startswith("JWT_TOKEN=")
            assert new != old
        else:
            assert new == old
    assert decode_claims(read_env(settings.env_file)["JWT_TOKEN"])["sub"] == "admin"


def test_refresh_appends_missing_key(settings: Settings) -> None:
    settings.env_file.write_text("# only a comment\n")
    refresh_token(settings)
    lines = settings.env_file.read_text().splitlines()
    assert lines[0] == "# only a comment"
    assert lines[1].startswith("JWT_TOKEN=")


def test_refresh_as_demo_user(settings: Settings) -> None:
    info = refresh_token(settings, "vishal")
    assert info.username == "vishal"
    assert info.role == "developer"


def test_refresh_wrong_password_raises(settings: Settings) -> None:
    with pytest.raises(LoginError) as caught:
        refresh_token(settings, "happy", "not-the-password")
    assert str(caught.value) == "login failed for happy: invalid username or password"


def test_refresh_concurrent_leaves_valid_file(settings: Settings) -> None:
    errors: list[BaseException] = []

    def refresh(user: str) -> None:
        try:
            refresh_token(settings, user)
        except BaseException as error:  # noqa: BLE001 - reported by the assert
            errors.append(error)

    # One login per user, because the auth service throttles parallel logins
    # of one username.
    users = ["admin", "vishal", "happy", "alex"]
    threads = [threading.Thread(target=refresh, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    env = read_env(settings.env_file)
    assert decode_claims(env["JWT_TOKEN"])["sub"] in users
    assert env["AUTH_SERVICE_PORT"] == str(settings.port("auth"))
    temp_files = settings.project_dir.glob(".env.*")
    leftovers = [path.name for path in temp_files if path.suffix != ".lock"]
    assert leftovers == []


def test_needs_refresh_cases(auth_project: Project, settings: Settings) -> None:
    secret = auth_project.env["JWT_SECRET_KEY"]
    fresh = issue_token(secret, "admin", "admin", 1000)
    claims = decode_claims(fresh)
    write_env_file(auth_project, JWT_TOKEN=fresh)
    assert token_needs_refresh(settings) is False
    assert token_needs_refresh(settings, now=claims["iat"] + 500) is False
    assert token_needs_refresh(settings, now=claims["iat"] + 850) is True
    write_env_file(auth_project, JWT_TOKEN=issue_token(secret, "admin", "admin", -10))
    assert token_needs_refresh(settings) is True
    write_env_file(auth_project, JWT_TOKEN="not-a-jwt")
    assert token_needs_refresh(settings) is True
    write_env_file(auth_project, JWT_TOKEN="")
    assert token_needs_refresh(settings) is True


def test_needs_refresh_reads_file_fresh(
    auth_project: Project, settings: Settings
) -> None:
    write_env_file(auth_project, JWT_TOKEN="")
    assert token_needs_refresh(settings) is True
    refresh_token(settings)
    assert token_needs_refresh(settings) is False
    assert current_token(settings) == read_env(settings.env_file)["JWT_TOKEN"]


def test_mask_token_shows_prefix() -> None:
    assert mask_token("eyJhbGciOiJIUzI1NiJ9.x.y") == "eyJhbG…"


def test_cli_refresh_prints_masked(
    auth_project: Project,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = project_env(auth_project)
    result = run_cli(["token", "refresh"], env, monkeypatch, capsys)
    token = read_env(settings.env_file)["JWT_TOKEN"]
    assert result.exit_code == 0, result.stderr
    assert token[:6] + "…" in result.stdout
    assert token not in result.stdout
    assert "admin" in result.stdout
    assert "not running, nothing to restart" in result.stdout


def test_cli_refresh_wrong_password(
    auth_project: Project,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_cli(
        ["token", "refresh", "--user", "vishal", "--password-stdin"],
        project_env(auth_project),
        monkeypatch,
        capsys,
        stdin="wrong-password\n",
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "error: login failed for vishal: invalid username or password\n"
    )


def test_cli_refresh_password_stdin(
    auth_project: Project,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_cli(
        ["token", "refresh", "--user", "alex", "--password-stdin"],
        project_env(auth_project, JARVIS_DEMO_PASSWORD=""),
        monkeypatch,
        capsys,
        stdin=auth_project.env["JARVIS_DEMO_PASSWORD"] + "\n",
    )
    assert result.exit_code == 0, result.stderr
    assert decode_claims(read_env(settings.env_file)["JWT_TOKEN"])["sub"] == "alex"


def test_cli_refresh_prompts_hidden(
    auth_project: Project, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jarvisctl.cli import app

    for key, value in project_env(auth_project, JARVIS_DEMO_PASSWORD="").items():
        monkeypatch.setenv(key, value)
    password = auth_project.env["JARVIS_DEMO_PASSWORD"]
    result = CliRunner().invoke(
        app, ["token", "refresh", "--user", "happy"], input=password + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "Password for happy" in result.output
    assert password not in result.output
    assert decode_claims(read_env(settings.env_file)["JWT_TOKEN"])["sub"] == "happy"


def test_cli_refresh_auth_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path)
    write_env_file(project)
    result = run_cli(["token", "refresh"], project.env, monkeypatch, capsys)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: login failed: auth service not reachable at {project.url('auth')}; "
        "run `jarvisctl up`\n"
    )


def test_cli_show_masks_token(
    auth_project: Project,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refresh_token(settings, "vishal")
    token = read_env(settings.env_file)["JWT_TOKEN"]
    result = run_cli(["token", "show"], project_env(auth_project), monkeypatch, capsys)
    assert result.exit_code == 0, result.stderr
    assert token[:6] + "…" in result.stdout
    assert token not in result.stdout
    assert "vishal" in result.stdout
    assert "developer" in result.stdout
    assert "accepted by auth  yes" in result.stdout


def test_cli_show_reveal_prints_token(
    auth_project: Project,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refresh_token(settings)
    token = read_env(settings.env_file)["JWT_TOKEN"]
    result = run_cli(
        ["token", "show", "--reveal"], project_env(auth_project), monkeypatch, capsys
    )
    assert result.exit_code == 0, result.stderr
    assert f"token {token}\n" in result.stdout


def test_cli_show_expired_exits_1(
    auth_project: Project,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expired = issue_token(auth_project.env["JWT_SECRET_KEY"], "admin", "admin", -60)
    write_env_file(auth_project, JWT_TOKEN=expired)
    result = run_cli(["token", "show"], project_env(auth_project), monkeypatch, capsys)
    assert result.exit_code == 1
    assert "expired" in result.stdout
    assert result.stderr == (
        "error: JWT_TOKEN has expired; run `jarvisctl token refresh`\n"
    )


def test_cli_show_rejected_exits_1(
    auth_project: Project,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    forged = issue_token("x" * 64, "admin", "admin", 600)
    write_env_file(auth_project, JWT_TOKEN=forged)
    result = run_cli(["token", "show"], project_env(auth_project), monkeypatch, capsys)
    assert result.exit_code == 1
    assert "no (bad signature)" in result.stdout
    assert "rejected JWT_TOKEN (bad signature)" in result.stderr


def test_cli_show_auth_down_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path)
    write_env_file(project, JWT_TOKEN=agent_token(project, "admin", "admin"))
    result = run_cli(["token", "show"], project.env, monkeypatch, capsys)
    assert result.exit_code == 0, result.stderr
    assert "unknown (auth service not reachable)" in result.stdout


def test_cli_show_without_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path)
    write_env_file(project)
    result = run_cli(["token", "show"], project.env, monkeypatch, capsys)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: JWT_TOKEN is empty in .env; run `jarvisctl token refresh`\n"
    )


def test_refreshed_token_accepted_by_auth(
    auth_project: Project, settings: Settings
) -> None:
    refresh_token(settings)
    token = read_env(settings.env_file)["JWT_TOKEN"]
    response = httpx.get(
        f"{auth_project.url('auth')}/auth/verify",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["claims"]["exp"] > time.time()
