"""Tests of reading and writing state.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jarvisctl.config import Settings
from jarvisctl.health import CardSummary, HealthResult
from jarvisctl.state import (
    ServiceState,
    StackState,
    SupervisorInfo,
    read_state,
    state_path,
    write_state,
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(project_dir=tmp_path, env={"JARVIS_RUN_DIR": str(tmp_path / "run")})


def sample_state() -> StackState:
    tickets = ServiceState(
        name="tickets",
        port=8080,
        pid=4121,
        create_time=1764859990.25,
        state="running",
        desired="running",
        started_at=1764859991.0,
        restarts=2,
        last_exit=1,
        health=HealthResult(True, 200, 3.4, 1764860000.0),
        card=CardSummary("TicketsAgent", "1.0.0", 4, "http://127.0.0.1:8080"),
    )
    auth = ServiceState(
        name="auth", port=9998, error="port 9998 is held by pid 1 (init)"
    )
    return StackState(
        updated_at=1764860000.5,
        supervisor=SupervisorInfo(
            123, 1764859990.1, 1764859990.2, "/run/supervisor.sock"
        ),
        services={"tickets": tickets, "auth": auth},
    )


def test_write_then_read_round_trip(settings: Settings) -> None:
    state = sample_state()

    write_state(settings, state)
    loaded = read_state(settings)

    assert loaded == state


def test_written_file_matches_schema(settings: Settings) -> None:
    write_state(settings, sample_state())

    data = json.loads(state_path(settings).read_text())

    assert data["version"] == 1
    assert data["supervisor"]["socket"] == "/run/supervisor.sock"
    assert data["services"]["tickets"]["health"]["latency_ms"] == 3.4
    assert data["services"]["tickets"]["card"]["skills"] == 4
    assert data["services"]["auth"]["pid"] is None
    assert data["services"]["auth"]["health"] is None


def test_read_missing_file_returns_none(settings: Settings) -> None:
    assert read_state(settings) is None


@pytest.mark.parametrize(
    "content",
    [
        '{"version": 1, "updated_at": 1.0, "serv',
        "[1, 2]",
        '{"services": {}}',
        "\x00\x01",
    ],
)
def test_read_corrupted_file_warns(
    settings: Settings, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = state_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text(content)

    loaded = read_state(settings)

    assert loaded is None
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "corrupted state file" in warnings[0].getMessage()


def test_write_leaves_no_temp_files(settings: Settings) -> None:
    for restarts in range(5):
        state = sample_state()
        state.services["tickets"].restarts = restarts
        write_state(settings, state)

    names = sorted(path.name for path in settings.run_dir.iterdir())
    loaded = read_state(settings)

    assert names == ["state.json"]
    assert loaded is not None
    assert loaded.services["tickets"].restarts == 4
    assert (state_path(settings).stat().st_mode & 0o777) == 0o600


def test_failed_write_keeps_previous_file(settings: Settings) -> None:
    write_state(settings, sample_state())
    broken = sample_state()
    broken.services["tickets"].restarts = object()  # type: ignore[assignment]

    with pytest.raises(TypeError):
        write_state(settings, broken)

    names = sorted(path.name for path in settings.run_dir.iterdir())
    assert names == ["state.json"]
    assert read_state(settings) == sample_state()
