"""Tests of the gateway config and of the real LiteLLM proxy in front of the agents."""

from __future__ import annotations

import logging
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import (
    ROOT,
    GatewayStack,
    Project,
    find_records,
    login,
    write_env_file,
)
from jarvisctl.config import Settings
from jarvisctl.errors import GatewayConfigError
from jarvisctl.gateway import (
    RUNTIME_FILE_NAME,
    gateway_launch,
    load_gateway_config,
    render_runtime_config,
)

COMMITTED_CONFIG = ROOT / "litellm_config.yaml"

LEGACY_CONFIG = """\
model_list:
  - model_name: gemini-flash
    litellm_params:
      model: gemini/gemini-2.5-flash
agents:
  - agent_id: tickets
    agent_name: TicketsAgent
    description: IT tickets
    base_url: http://127.0.0.1:${TICKETS_AGENT_PORT}/
    auth_type: bearer
    auth_token: legacy-token
    rate_limit: 60
  - agent_id: finops
    base_url: http://127.0.0.1:${FINOPS_AGENT_PORT}/
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
"""


def write_config(directory: Path, text: str) -> Path:
    path = directory / "litellm_config.yaml"
    path.write_text(text)
    return path


def settings_for(project: Project, **extra: str) -> Settings:
    return Settings(project_dir=project.directory, env={**project.env, **extra})


def committed_with(old: str, new: str) -> str:
    text = COMMITTED_CONFIG.read_text()
    assert old in text
    return text.replace(old, new, 1)


def line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


def send_message(
    url: str, text: str, headers: dict[str, str], method: str = "message/send"
) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": method,
        "params": {
            "message": {
                "role": "user",
                "messageId": secrets.token_hex(8),
                "parts": [{"kind": "text", "text": text}],
            }
        },
    }
    return httpx.post(url, json=body, headers=headers, timeout=60)


# Config validation and rendering, no services needed.


def test_config_committed_is_valid() -> None:
    config = load_gateway_config(COMMITTED_CONFIG)
    assert config.agent_names == ["tickets", "finops", "oxygen"]
    assert config.warnings == []


def test_config_committed_has_no_secret() -> None:
    data = yaml.safe_load(COMMITTED_CONFIG.read_text())
    assert data["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert all("static_headers" not in agent for agent in data["agents"])


def test_config_unknown_key_names_line(tmp_path: Path) -> None:
    text = committed_with("  - agent_name: finops", "  - agent_nmae: finops")
    path = write_config(tmp_path, text)
    with pytest.raises(GatewayConfigError) as caught:
        load_gateway_config(path)
    message = str(caught.value)
    line = line_of(text, "agent_nmae")
    assert message.startswith(f"{path}:{line}: unknown key 'agent_nmae' in agents[1]")
    assert "expected one of agent_name, agent_card_params" in message
    assert "\n" not in message


def test_config_wrong_type_names_line(tmp_path: Path) -> None:
    text = committed_with('protocolVersion: "0.3.0"', "protocolVersion: 0.3")
    path = write_config(tmp_path, text)
    with pytest.raises(GatewayConfigError) as caught:
        load_gateway_config(path)
    line = line_of(text, "protocolVersion: 0.3")
    assert str(caught.value) == (
        f"{path}:{line}: invalid agents[0].agent_card_params.protocolVersion: "
        "expected a string, got 0.3 (quote it)"
    )


def test_config_nested_unknown_key_rejected(tmp_path: Path) -> None:
    text = committed_with("        streaming: true", "        streeming: true")
    path = write_config(tmp_path, text)
    with pytest.raises(GatewayConfigError) as caught:
        load_gateway_config(path)
    line = line_of(text, "streeming")
    assert str(caught.value).startswith(
        f"{path}:{line}: unknown key 'streeming' in "
        "agents[0].agent_card_params.capabilities"
    )


def test_config_missing_card_rejected(tmp_path: Path) -> None:
    text = "agents:\n  - agent_name: tickets\n    rpm_limit: 5\n"
    path = write_config(tmp_path, text)
    with pytest.raises(GatewayConfigError) as caught:
        load_gateway_config(path)
    assert str(caught.value) == (
        f"{path}:2: missing key 'agent_card_params' in agents[0]"
    )


def test_config_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "agents:\n  - agent_name: [tickets\n")
    with pytest.raises(GatewayConfigError) as caught:
        load_gateway_config(path)
    assert str(caught.value).startswith(f"{path}:3: invalid YAML")


def test_config_duplicate_agent_rejected(tmp_path: Path) -> None:
    text = committed_with("  - agent_name: finops", "  - agent_name: tickets")
    path = write_config(tmp_path, text)
    with pytest.raises(GatewayConfigError) as caught:
        load_gateway_config(path)
    assert "duplicate agent_name 'tickets' in agents[1]" in str(caught.value)


def test_config_missing_file_hint(tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigError) as caught:
        load_gateway_config(tmp_path / "absent.yaml")
    assert "set LITELLM_CONFIG in .env" in str(caught.value)


def test_legacy_format_translated(tmp_path: Path) -> None:
    config = load_gateway_config(write_config(tmp_path, LEGACY_CONFIG))
    tickets, finops = config.agents
    card = tickets["agent_card_params"]
    assert tickets["agent_name"] == "tickets"
    assert card["name"] == "TicketsAgent"
    assert card["description"] == "IT tickets"
    assert card["url"] == "http://127.0.0.1:${TICKETS_AGENT_PORT}/"
    assert tickets["static_headers"] == {
        "X-Jarvis-Gateway-Token": "Bearer legacy-token"
    }
    assert tickets["rpm_limit"] == 60
    assert finops["agent_card_params"]["name"] == "FinOpsAgent"
    assert "static_headers" not in finops
    assert len(config.warnings) == 1
    assert "tickets, finops" in config.warnings[0]


def test_legacy_bad_auth_type_rejected(tmp_path: Path) -> None:
    text = LEGACY_CONFIG.replace("auth_type: bearer", "auth_type: oauth")
    path = write_config(tmp_path, text)
    with pytest.raises(GatewayConfigError) as caught:
        load_gateway_config(path)
    line = line_of(text, "auth_type")
    assert str(caught.value).startswith(
        f"{path}:{line}: invalid agents[0].auth_type 'oauth'"
    )


def test_legacy_warning_logged_once(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    write_config(project.directory, LEGACY_CONFIG)
    settings = settings_for(project, JWT_TOKEN="a.b.c")
    with caplog.at_level(logging.WARNING, logger="jarvisctl.gateway"):
        render_runtime_config(settings)
        render_runtime_config(settings)
    warnings = [r for r in caplog.records if "older flat format" in r.getMessage()]
    assert len(warnings) == 1


def test_legacy_token_kept_in_render(project: Project) -> None:
    write_config(project.directory, LEGACY_CONFIG)
    path = render_runtime_config(settings_for(project, JWT_TOKEN="new.jwt.token"))
    agents = yaml.safe_load(path.read_text())["agents"]
    assert agents[0]["static_headers"] == {
        "X-Jarvis-Gateway-Token": "Bearer legacy-token"
    }
    assert agents[1]["static_headers"] == {
        "X-Jarvis-Gateway-Token": "Bearer new.jwt.token"
    }
    assert agents[1]["agent_card_params"]["url"] == project.url("finops") + "/"


def test_render_private_and_committed_untouched(project: Project) -> None:
    committed = write_config(project.directory, COMMITTED_CONFIG.read_text())
    before = committed.read_bytes()
    path = render_runtime_config(settings_for(project, JWT_TOKEN="x.y.z"))
    assert path == project.directory / ".jarvis" / RUNTIME_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert committed.read_bytes() == before
    assert "x.y.z" not in before.decode()


def test_render_resolves_ports_and_token(project: Project) -> None:
    write_config(project.directory, COMMITTED_CONFIG.read_text())
    path = render_runtime_config(settings_for(project, JWT_TOKEN="x.y.z"))
    agents = {a["agent_name"]: a for a in yaml.safe_load(path.read_text())["agents"]}
    for name in ("tickets", "finops", "oxygen"):
        assert agents[name]["agent_card_params"]["url"] == project.url(name) + "/"
        assert agents[name]["static_headers"] == {
            "X-Jarvis-Gateway-Token": "Bearer x.y.z"
        }


def test_render_prefers_token_in_env_file(project: Project) -> None:
    write_config(project.directory, COMMITTED_CONFIG.read_text())
    write_env_file(project, JWT_TOKEN="from.env.file")
    path = render_runtime_config(settings_for(project, JWT_TOKEN="stale.env.value"))
    agent = yaml.safe_load(path.read_text())["agents"][0]
    assert agent["static_headers"]["X-Jarvis-Gateway-Token"] == "Bearer from.env.file"


def test_render_wildcard_host_uses_loopback(project: Project) -> None:
    write_config(project.directory, COMMITTED_CONFIG.read_text())
    settings = settings_for(project, JARVIS_BIND_HOST="0.0.0.0", JWT_TOKEN="a.b.c")
    path = render_runtime_config(settings)
    agent = yaml.safe_load(path.read_text())["agents"][0]
    assert agent["agent_card_params"]["url"] == project.url("tickets") + "/"


def test_render_unknown_placeholder_rejected(project: Project) -> None:
    text = committed_with("${TICKETS_AGENT_PORT}", "${TICKETS_PORT}")
    write_config(project.directory, text)
    with pytest.raises(GatewayConfigError) as caught:
        render_runtime_config(settings_for(project))
    assert str(caught.value) == (
        "missing TICKETS_PORT for ${TICKETS_PORT} in "
        "agents[0].agent_card_params.url of the gateway config; set it in .env"
    )


def test_launch_argv_and_env(project: Project) -> None:
    write_config(project.directory, COMMITTED_CONFIG.read_text())
    argv, env = gateway_launch(settings_for(project))
    assert argv[:3] == [sys.executable, "-m", "litellm.proxy.proxy_cli"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == str(project.port("gateway"))
    assert argv[argv.index("--num_workers") + 1] == "1"
    assert argv[argv.index("--config") + 1].endswith(RUNTIME_FILE_NAME)
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert env["LITELLM_MASTER_KEY"] == project.env["LITELLM_MASTER_KEY"]


@pytest.mark.parametrize("key", ["", "sk-1234"])
def test_launch_rejects_weak_master_key(project: Project, key: str) -> None:
    write_config(project.directory, COMMITTED_CONFIG.read_text())
    with pytest.raises(GatewayConfigError) as caught:
        gateway_launch(settings_for(project, LITELLM_MASTER_KEY=key))
    assert "LITELLM_MASTER_KEY" in str(caught.value)
    assert "jarvisctl init" in str(caught.value)


def test_cli_broken_config_one_line(project: Project) -> None:
    text = committed_with("  - agent_name: oxygen", "  - agent_nmae: oxygen")
    write_config(project.directory, text)
    write_env_file(project)
    env = project.process_env()
    result = subprocess.run(
        [sys.executable, "-m", "jarvisctl", "agents"],
        cwd=project.directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = line_of(text, "agent_nmae")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"litellm_config.yaml:{line}: unknown key 'agent_nmae'" in result.stderr


# The real proxy in front of the real agents.


def gateway_headers(stack: GatewayStack, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.master_key}", **extra}


def test_gateway_lists_three_agents(gateway_stack: GatewayStack) -> None:
    response = httpx.get(
        f"{gateway_stack.gateway.url}/v1/agents",
        headers=gateway_headers(gateway_stack),
        timeout=10,
    )
    assert response.status_code == 200
    names = sorted(agent["agent_name"] for agent in response.json())
    assert names == ["finops", "oxygen", "tickets"]


def test_gateway_forwards_user_token(gateway_stack: GatewayStack) -> None:
    project = gateway_stack.project
    vishal = login(project.url("auth"), "vishal", project.env["JARVIS_DEMO_PASSWORD"])
    headers = gateway_headers(
        gateway_stack, **{"x-a2a-tickets-authorization": f"Bearer {vishal}"}
    )
    response = send_message(
        f"{gateway_stack.gateway.url}/a2a/tickets", "create VPN ticket", headers
    )
    assert response.status_code == 200, response.text
    records = find_records(response.json())
    assert len(records) == 1
    assert records[0]["owner"] == "vishal"


def test_gateway_uses_own_identity(gateway_stack: GatewayStack) -> None:
    response = send_message(
        f"{gateway_stack.gateway.url}/a2a/tickets",
        "open a ticket for a broken laptop",
        gateway_headers(gateway_stack),
    )
    assert response.status_code == 200, response.text
    records = find_records(response.json())
    assert len(records) == 1
    assert records[0]["owner"] == "admin"


def test_gateway_send_message_method(gateway_stack: GatewayStack) -> None:
    response = send_message(
        f"{gateway_stack.gateway.url}/a2a/tickets",
        "show my tickets",
        {**gateway_headers(gateway_stack), "A2A-Version": "1.0"},
        method="SendMessage",
    )
    assert response.status_code == 200, response.text
    assert "error" not in response.json()


def test_gateway_static_header_beats_caller(gateway_stack: GatewayStack) -> None:
    project = gateway_stack.project
    vishal = login(project.url("auth"), "vishal", project.env["JARVIS_DEMO_PASSWORD"])
    spoof = {"x-a2a-tickets-x-jarvis-gateway-token": f"Bearer {vishal}"}
    response = send_message(
        f"{gateway_stack.gateway.url}/a2a/tickets",
        "create VPN ticket",
        gateway_headers(gateway_stack, **spoof),
    )
    assert response.status_code == 200, response.text
    assert find_records(response.json())[0]["owner"] == "admin"


def test_gateway_expired_user_token_not_downgraded(
    gateway_stack: GatewayStack,
) -> None:
    from services.common.tokens import issue_token

    secret = gateway_stack.project.env["JWT_SECRET_KEY"]
    expired = issue_token(secret, "vishal", "developer", -60)
    headers = gateway_headers(
        gateway_stack, **{"x-a2a-tickets-authorization": f"Bearer {expired}"}
    )
    response = send_message(
        f"{gateway_stack.gateway.url}/a2a/tickets", "create VPN ticket", headers
    )
    assert "error" in response.json()
    assert find_records(response.json()) == []


def test_gateway_rejects_missing_master_key(gateway_stack: GatewayStack) -> None:
    response = send_message(
        f"{gateway_stack.gateway.url}/a2a/tickets", "show my tickets", {}
    )
    assert response.status_code == 500
    assert "records" not in response.text


def test_gateway_rejects_wrong_master_key(gateway_stack: GatewayStack) -> None:
    response = send_message(
        f"{gateway_stack.gateway.url}/a2a/tickets",
        "show my tickets",
        {"Authorization": "Bearer sk-wrong-key"},
    )
    assert response.status_code in (400, 401, 403)


def test_gateway_card_points_at_gateway(gateway_stack: GatewayStack) -> None:
    response = httpx.get(
        f"{gateway_stack.gateway.url}/a2a/tickets/.well-known/agent-card.json",
        headers=gateway_headers(gateway_stack),
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["url"] == f"{gateway_stack.gateway.url}/a2a/tickets"
    assert response.json()["name"] == "TicketsAgent"


def test_gateway_runtime_file_private(gateway_stack: GatewayStack) -> None:
    path = gateway_stack.project.directory / ".jarvis" / RUNTIME_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.stat(path).st_uid == os.getuid()


def test_cli_up_broken_config_starts_nothing(project: Project) -> None:
    text = committed_with("  - agent_name: oxygen", "  - agent_nmae: oxygen")
    write_config(project.directory, text)
    write_env_file(project)
    result = subprocess.run(
        [sys.executable, "-m", "jarvisctl", "up", "gateway"],
        cwd=project.directory,
        env=project.process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = line_of(text, "agent_nmae")
    assert result.returncode == 2
    assert f"litellm_config.yaml:{line}: unknown key 'agent_nmae'" in result.stderr
    assert not (project.directory / ".jarvis" / "supervisor.sock").exists()
    assert not (project.directory / ".jarvis" / "state.json").exists()
