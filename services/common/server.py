"""Run a service's ASGI app under uvicorn with the stack's conventions."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import uvicorn

from services.common.logs import configure_logging
from services.common.settings import ConfigError, ServiceSettings, load_settings

# Exit code for a configuration error found before serving, as uvicorn uses 3
# for start-up failures. The supervisor does not retry a service that exits
# with it before it was ever healthy, since a restart cannot fix the setting.
STARTUP_FAILURE = 3

logger = logging.getLogger(__name__)


def serve(service: str, build_app: Callable[[ServiceSettings], Any]) -> None:
    """Build the app from the project's settings and serve it until stopped."""
    settings = load_settings()
    configure_logging(settings.env.get("JARVIS_LOG_LEVEL", "INFO"))
    try:
        port = settings.port(service)
        app = build_app(settings)
    except ConfigError as error:
        logger.error("Failed to start %s: %s", service, error)
        sys.exit(STARTUP_FAILURE)
    logger.info("Starting %s on %s:%d", service, settings.host, port)
    uvicorn.run(
        app,
        host=settings.host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
