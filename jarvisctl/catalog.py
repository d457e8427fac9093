"""The catalog of services `jarvisctl` operates, with their ports and URLs.

Tests replace the built-in catalog with stand-in services through a JSON file
named by JARVIS_SERVICES_FILE; the supervisor reads the same variable, so the
CLI and the supervisor always agree on names, ports and timeouts.
"""

from __future__ import annotations

import os
from pathlib import Path

from jarvisctl.config import SERVICES, ServiceSpec, Settings
from jarvisctl.errors import UsageError

# Names a JSON service catalog that replaces the built-in one (tests).
SERVICES_FILE_ENV = "JARVIS_SERVICES_FILE"


def catalog() -> tuple[ServiceSpec, ...]:
    """Return the service catalog: the file named by JARVIS_SERVICES_FILE, if set.

    The supervisor reads the same variable, so tests that run stand-in
    services through it see the same names, ports and timeouts here.
    """
    path = os.environ.get(SERVICES_FILE_ENV)
    if not path:
        return SERVICES
    from jarvisctl.supervisor import load_services_file

    return tuple(load_services_file(Path(path)))


def service_names() -> tuple[str, ...]:
    """Return the names of the catalog's services in start order."""
    return tuple(spec.name for spec in catalog())


def spec_of(name: str) -> ServiceSpec:
    """Return the catalog entry of `name`; raises UsageError listing the names."""
    for spec in catalog():
        if spec.name == name:
            return spec
    known = ", ".join(service_names())
    raise UsageError(f"unknown service {name!r}: choose one of {known}")


def service_ports(settings: Settings) -> dict[str, int]:
    """Return each service's port; raises UsageError for an invalid port in .env."""
    from jarvisctl.process import service_port

    return {spec.name: service_port(settings, spec) for spec in catalog()}


def health_url(settings: Settings, name: str, port: int) -> str:
    return f"http://{settings.host}:{port}{spec_of(name).health_path}"
