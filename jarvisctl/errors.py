"""Errors that jarvisctl reports to the user as one line.

JarvisError
├── UsageError        bad arguments or configuration (exit 2)
├── EnvFileError      `.env` cannot be read or written
├── ServiceError      a service failed to start, stop or answer
├── ControlError      the supervisor's control socket failed
├── LoginError        the auth service rejected a login
└── GatewayConfigError  litellm_config.yaml is invalid (exit 2)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class JarvisError(Exception):
    """A failure jarvisctl reports as one line and exit code 1."""

    exit_code = EXIT_FAILURE


class UsageError(JarvisError):
    """Bad arguments or configuration given by the user."""

    exit_code = EXIT_USAGE


class EnvFileError(JarvisError):
    """The project's `.env` cannot be read or written."""


class ServiceError(JarvisError):
    """A service failed to start, stop or answer."""


class ControlError(JarvisError):
    """The supervisor did not answer on its control socket."""


class LoginError(JarvisError):
    """The auth service rejected a login or could not be reached."""


class GatewayConfigError(UsageError):
    """`litellm_config.yaml` is invalid."""
