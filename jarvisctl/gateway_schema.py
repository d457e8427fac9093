"""The schema of `litellm_config.yaml` and a YAML loader that keeps line numbers.

Only the part of LiteLLM's config schema this stack uses is described, so an
unknown or mistyped key fails with its file, line and key instead of LiteLLM
silently skipping the entry (litellm 1.108 skips agents it cannot read).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from jarvisctl.errors import GatewayConfigError


class LineDict(dict):
    """A YAML mapping that remembers its own line and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list):
    """A YAML sequence that remembers its own line and the line of each item."""

    line: int = 0
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    """PyYAML's safe loader, building LineDict and LineList with 1-based lines."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    sequence = LineList(loader.construct_object(item, deep=True) for item in node.value)
    sequence.line = node.start_mark.line + 1
    sequence.item_lines = [item.start_mark.line + 1 for item in node.value]
    return sequence


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)
_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence
)


@dataclass(frozen=True)
class Key:
    """The expected type of one config key; `fields` checks a nested mapping."""

    kind: str
    required: bool = False
    fields: dict[str, Key] | None = None
    item_fields: dict[str, Key] | None = None


KIND_TEXT = {
    "str": "a string",
    "int": "an integer",
    "bool": "true or false",
    "map": "a mapping",
    "list": "a list",
    "str_list": "a list of strings",
    "str_map": "a mapping of strings to strings",
}
SKILL_FIELDS = {
    "id": Key("str", True),
    "name": Key("str", True),
    "description": Key("str", True),
    "tags": Key("str_list", True),
    "examples": Key("str_list"),
    "inputModes": Key("str_list"),
    "outputModes": Key("str_list"),
    "security": Key("list"),
}
CAPABILITY_FIELDS = {
    "streaming": Key("bool"),
    "pushNotifications": Key("bool"),
    "stateTransitionHistory": Key("bool"),
    "extensions": Key("list"),
}
# The card fields of litellm 1.108's AgentCard (litellm/types/agents.py).
CARD_FIELDS = {
    "name": Key("str", True),
    "description": Key("str", True),
    "url": Key("str", True),
    "version": Key("str", True),
    "protocolVersion": Key("str", True),
    "capabilities": Key("map", True, CAPABILITY_FIELDS),
    "defaultInputModes": Key("str_list", True),
    "defaultOutputModes": Key("str_list", True),
    "skills": Key("list", True, item_fields=SKILL_FIELDS),
    "preferredTransport": Key("str"),
    "additionalInterfaces": Key("list"),
    "iconUrl": Key("str"),
    "provider": Key("map"),
    "documentationUrl": Key("str"),
    "securitySchemes": Key("map"),
    "security": Key("list"),
    "supportsAuthenticatedExtendedCard": Key("bool"),
    "signatures": Key("list"),
}
# The agent fields of litellm 1.108's AgentConfig that this stack supports.
AGENT_FIELDS = {
    "agent_name": Key("str", True),
    "agent_card_params": Key("map", True, CARD_FIELDS),
    "litellm_params": Key("map"),
    "static_headers": Key("str_map"),
    "extra_headers": Key("str_list"),
    "rpm_limit": Key("int"),
    "tpm_limit": Key("int"),
    "session_rpm_limit": Key("int"),
    "session_tpm_limit": Key("int"),
    "object_permission": Key("map"),
    "access_group_ids": Key("str_list"),
    "enabled": Key("bool"),
}
LEGACY_AGENT_FIELDS = {
    "agent_id": Key("str"),
    "agent_name": Key("str"),
    "description": Key("str"),
    "base_url": Key("str", True),
    "auth_type": Key("str"),
    "auth_token": Key("str"),
    "rate_limit": Key("int"),
}
LEGACY_ONLY_KEYS = frozenset(LEGACY_AGENT_FIELDS) - frozenset(AGENT_FIELDS)
LEGACY_AUTH_TYPES = ("bearer", "none")
MODEL_FIELDS = {
    "model_name": Key("str", True),
    "litellm_params": Key("map", True, {"model": Key("str", True)}),
    "model_info": Key("map"),
}
# Open mappings (fields None) are passed to LiteLLM unchecked.
TOP_FIELDS = {
    "model_list": Key("list", item_fields=MODEL_FIELDS),
    "agents": Key("list"),
    "agent_list": Key("list"),
    "litellm_settings": Key("map"),
    "router_settings": Key("map"),
    "general_settings": Key("map", fields=None),
}
# Mappings checked only for the types of the keys listed; others pass through.
OPEN_MAPPINGS = {"litellm_params"}


def load_yaml_with_lines(path: Path, label: str) -> LineDict:
    """Parse `path` into LineDict/LineList; raise GatewayConfigError on bad YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GatewayConfigError(
            f"missing gateway config {label}; set LITELLM_CONFIG in .env or restore "
            "the file"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise GatewayConfigError(f"cannot read {label}: {error}") from None
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - safe loader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 0
        raise GatewayConfigError(
            f"{label}:{line}: invalid YAML: {error.problem or error.context}"
        ) from None
    except yaml.YAMLError as error:
        raise GatewayConfigError(f"{label}: invalid YAML: {error}") from None
    if not isinstance(document, LineDict):
        raise GatewayConfigError(
            f"{label}:1: invalid gateway config: expected a mapping with "
            "model_list, agents and general_settings"
        )
    return document


def check_mapping(
    mapping: LineDict, fields: dict[str, Key], label: str, where: str
) -> None:
    """Check keys and types of `mapping` against `fields`, recursively."""
    for key, value in mapping.items():
        line = mapping.key_lines.get(key, mapping.line)
        spec = fields.get(key)
        if spec is None:
            raise GatewayConfigError(
                f"{label}:{line}: unknown key {key!r} in {where}; expected one of "
                f"{', '.join(fields)}"
            )
        _check_value(value, spec, label, line, f"{where}.{key}".lstrip("."))
    for key, spec in fields.items():
        if spec.required and key not in mapping:
            raise GatewayConfigError(
                f"{label}:{mapping.line}: missing key {key!r} in {where}"
            )


def _check_value(value: Any, spec: Key, label: str, line: int, where: str) -> None:
    if not _has_kind(value, spec.kind):
        hint = " (quote it)" if spec.kind == "str" and _is_scalar(value) else ""
        raise GatewayConfigError(
            f"{label}:{line}: invalid {where}: expected {KIND_TEXT[spec.kind]}, "
            f"got {value!r}{hint}"
        )
    if spec.fields is not None:
        if where.rsplit(".", 1)[-1] in OPEN_MAPPINGS:
            _check_listed(value, spec.fields, label, where)
        else:
            check_mapping(value, spec.fields, label, where)
    if spec.item_fields is not None:
        for index, item in enumerate(value):
            item_line = value.item_lines[index]
            if not isinstance(item, LineDict):
                raise GatewayConfigError(
                    f"{label}:{item_line}: invalid {where}[{index}]: expected a "
                    "mapping"
                )
            check_mapping(item, spec.item_fields, label, f"{where}[{index}]")


def _check_listed(
    mapping: LineDict, fields: dict[str, Key], label: str, where: str
) -> None:
    for key, spec in fields.items():
        if key not in mapping:
            if spec.required:
                raise GatewayConfigError(
                    f"{label}:{mapping.line}: missing key {key!r} in {where}"
                )
            continue
        line = mapping.key_lines.get(key, mapping.line)
        _check_value(mapping[key], spec, label, line, f"{where}.{key}")


def _has_kind(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "map":
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    if kind == "str_list":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "str_map":
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
    raise ValueError(f"unknown kind {kind}")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, bool))


def plain(value: Any) -> Any:
    """Return `value` with LineDict and LineList turned into dict and list."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value
