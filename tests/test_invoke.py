"""Tests of `jarvisctl invoke` and `jarvisctl agents` against the real stack."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from conftest import ROOT, GatewayStack, make_project, run_cli, write_env_file
from jarvisctl.errors import UsageError
from jarvisctl.invoke import AgentRef, resolve_agent
from services.common.tokens import issue_token

AGENTS = [
    AgentRef("tickets", "TicketsAgent", "http://127.0.0.1:1/"),
    AgentRef("finops", "FinOpsAgent", "http://127.0.0.1:2/"),
    AgentRef("oxygen", "OxygenAgent", "http://127.0.0.1:3/"),
]


def copy_of_stack(stack: GatewayStack, directory: Path, **extra: str) -> dict[str, str]:
    """Point a second project directory at the running stack; return its env."""
    shutil.copy(ROOT / "litellm_config.yaml", directory / "litellm_config.yaml")
    env = {
        **stack.project.env,
        "JARVIS_PROJECT_DIR": str(directory),
        "JARVIS_RUN_DIR": str(directory / ".jarvis"),
        **extra,
    }
    (directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return env


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tickets", "tickets"),
        ("TICKETS", "tickets"),
        ("FinOpsAgent", "finops"),
        ("oxygenagent", "oxygen"),
        ("tick", "tickets"),
        ("Fin", "finops"),
        ("o", "oxygen"),
    ],
)
def test_resolve_agent_matches(name: str, expected: str) -> None:
    assert resolve_agent(name, AGENTS).name == expected


def test_resolve_agent_unknown_lists_agents() -> None:
    with pytest.raises(UsageError) as caught:
        resolve_agent("payroll", AGENTS)
    assert str(caught.value) == (
        "unknown agent 'payroll': choose one of tickets (TicketsAgent), "
        "finops (FinOpsAgent), oxygen (OxygenAgent)"
    )


def test_resolve_agent_ambiguous_prefix() -> None:
    agents = [*AGENTS, AgentRef("tickets2", "TicketsAgentTwo", "http://127.0.0.1:4/")]
    with pytest.raises(UsageError) as caught:
        resolve_agent("ticketsag", agents)
    assert str(caught.value).startswith("ambiguous agent 'ticketsag'")


def test_cli_unknown_agent_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path)
    shutil.copy(ROOT / "litellm_config.yaml", tmp_path / "litellm_config.yaml")
    write_env_file(project)
    result = run_cli(["invoke", "payroll", "hi"], project.env, monkeypatch, capsys)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: unknown agent 'payroll': choose one of tickets (TicketsAgent), "
        "finops (FinOpsAgent), oxygen (OxygenAgent)\n"
    )


def test_cli_gateway_down_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path)
    shutil.copy(ROOT / "litellm_config.yaml", tmp_path / "litellm_config.yaml")
    write_env_file(project)
    result = run_cli(["invoke", "tickets", "hi"], project.env, monkeypatch, capsys)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: gateway not reachable at {project.url('gateway')}; "
        "run `jarvisctl up`\n"
    )


def test_invoke_direct_json(
    gateway_stack: GatewayStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_cli(
        ["invoke", "tickets", "create VPN ticket", "--direct", "--json"],
        gateway_stack.project.env,
        monkeypatch,
        capsys,
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["via"] == "direct"
    assert data["state"] == "completed"
    assert data["records"][0]["owner"] == "admin"


def test_invoke_gateway_as_user(
    gateway_stack: GatewayStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_cli(
        ["invoke", "Tick", "create VPN ticket", "--user", "vishal", "--json"],
        gateway_stack.project.env,
        monkeypatch,
        capsys,
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["via"] == "gateway"
    assert data["agent"] == "tickets"
    assert data["records"][0]["owner"] == "vishal"


def test_invoke_gateway_own_identity(
    gateway_stack: GatewayStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_cli(
        ["invoke", "TicketsAgent", "open a ticket for a broken laptop", "--json"],
        gateway_stack.project.env,
        monkeypatch,
        capsys,
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["records"][0]["owner"] == "admin"


def test_invoke_renders_text_and_table(
    gateway_stack: GatewayStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_cli(
        ["invoke", "tickets", "create VPN ticket", "--user", "happy"],
        gateway_stack.project.env,
        monkeypatch,
        capsys,
    )
    assert result.exit_code == 0, result.stderr
    assert "OWNER" in result.stdout
    assert "happy" in result.stdout


def test_invoke_stream_prints_updates(
    gateway_stack: GatewayStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_cli(
        ["invoke", "tickets", "show my tickets", "--direct", "--stream"],
        gateway_stack.project.env,
        monkeypatch,
        capsys,
    )
    assert result.exit_code == 0, result.stderr
    assert "… working" in result.stdout
    assert "… completed" in result.stdout


def test_invoke_expired_token_hint(
    gateway_stack: GatewayStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = gateway_stack.project.env["JWT_SECRET_KEY"]
    expired = issue_token(secret, "admin", "admin", -60)
    env = copy_of_stack(gateway_stack, tmp_path, JWT_TOKEN=expired)
    result = run_cli(
        ["invoke", "tickets", "show my tickets", "--direct"], env, monkeypatch, capsys
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "error: agent tickets rejected the token (expired); "
        "run `jarvisctl token refresh`\n"
    )


def test_invoke_wrong_master_key_hint(
    gateway_stack: GatewayStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = copy_of_stack(gateway_stack, tmp_path, LITELLM_MASTER_KEY="sk-wrong-key-123")
    result = run_cli(["invoke", "tickets", "hi"], env, monkeypatch, capsys)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: gateway rejected the master key: check LITELLM_MASTER_KEY in .env"
    )


def test_invoke_timeout(
    gateway_stack: GatewayStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    agent = gateway_stack.services["oxygen"].process
    os.kill(agent.pid, signal.SIGSTOP)
    try:
        result = run_cli(
            ["invoke", "oxygen", "which exams", "--direct", "--timeout", "1"],
            gateway_stack.project.env,
            monkeypatch,
            capsys,
        )
    finally:
        os.kill(agent.pid, signal.SIGCONT)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: timed out after 1 s waiting for oxygen")


def test_agents_all_consistent(
    gateway_stack: GatewayStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import httpx

    for name in ("tickets", "finops", "oxygen"):
        card_url = f"{gateway_stack.project.url(name)}/.well-known/agent-card.json"
        response = httpx.post(
            f"{gateway_stack.project.url('registry')}/agents",
            json={"card_url": card_url},
            timeout=10,
        )
        assert response.status_code in (200, 201), response.text
    env = gateway_stack.project.env
    result = run_cli(["agents", "--json"], env, monkeypatch, capsys)
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert sorted(rows) == ["finops", "oxygen", "tickets"]
    for row in rows.values():
        assert row["problems"] == []
        assert row["gateway"] == "listed"
        assert row["live"] == "up"
        assert row["registry"] == "registered"
    assert result.exit_code == 0


def test_agents_flags_unregistered_and_down(
    gateway_stack: GatewayStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import httpx

    registry = gateway_stack.project.url("registry")
    oxygen_card = f"{gateway_stack.project.url('oxygen')}/.well-known/agent-card.json"
    registered = httpx.post(
        f"{registry}/agents", json={"card_url": oxygen_card}, timeout=10
    )
    assert registered.status_code in (200, 201), registered.text
    httpx.delete(f"{registry}/agents/FinOpsAgent", timeout=10)
    env = copy_of_stack(gateway_stack, tmp_path, OXYGEN_AGENT_PORT="1")
    result = run_cli(["agents", "--json"], env, monkeypatch, capsys)
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert result.exit_code == 1
    assert "running but not registered" in rows["finops"]["problems"]
    assert rows["oxygen"]["live"] == "down"
    assert "registered but down" in rows["oxygen"]["problems"]


def test_cli_non_utf8_text_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path)
    shutil.copy(ROOT / "litellm_config.yaml", tmp_path / "litellm_config.yaml")
    write_env_file(project)
    # What Python makes of the byte 0xff in argv, as from $(printf '\xff').
    text = b"hi \xff".decode("utf-8", "surrogateescape")
    result = run_cli(["invoke", "tickets", text], project.env, monkeypatch, capsys)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid text: not valid UTF-8 at char")
    assert result.stderr.count("\n") == 1


def test_data_part_whole_floats_become_ints() -> None:
    from jarvisctl.invoke import InvokeResult, _add_parts

    result = InvokeResult(agent="finops", via="direct")
    part = {"records": [{"cost": 12301.0, "share": 0.25, "id": "12301.0"}]}
    _add_parts(result, [], [part])
    record = result.records[0]
    assert record["cost"] == 12301
    assert isinstance(record["cost"], int)
    assert record["share"] == 0.25
    assert record["id"] == "12301.0"


def test_cli_invoke_help_password_order(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_cli(["invoke", "--help"], {"NO_COLOR": "1"}, monkeypatch, capsys)
    help_text = " ".join(result.stdout.split())
    assert result.exit_code == 0
    assert "from --password-stdin, else from .env" in help_text
    assert "else a hidden prompt" in help_text
