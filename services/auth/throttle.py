"""Failed-login throttling per username, over a sliding time window.

Keying by username alone stops password guessing against one account from any
number of addresses, but it also lets anyone lock a user out for one window by
sending wrong passwords. On a loopback-only demo stack that trade-off is fine.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from services.common.settings import ConfigError

# Five tries leave room for typos, and more would make guessing cheaper.
DEFAULT_MAX_FAILURES = 5
# One minute keeps a locked-out user waiting briefly while slowing guessing to
# five tries per minute per account.
DEFAULT_WINDOW_SECONDS = 60.0
# Bounds the memory an attacker can fill by trying many unknown usernames.
MAX_TRACKED_USERNAMES = 10_000


class LoginThrottle:
    """Counts failed logins per username and blocks after too many in the window.

    Safe to call from several threads, as FastAPI runs sync endpoints in a pool.
    """

    def __init__(
        self,
        max_failures: int = DEFAULT_MAX_FAILURES,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._pending: dict[str, int] = {}
        self._lock = threading.Lock()

    def start_attempt(self, username: str) -> int | None:
        """Admit one login attempt, or return the whole seconds until one is allowed.

        An admitted attempt counts against the limit until `finish_attempt`, so
        parallel requests cannot get past the limit while hashes are verified.
        """
        with self._lock:
            now = self._clock()
            failures = self._recent_failures(username, now)
            pending = self._pending.get(username, 0)
            if len(failures) + pending < self.max_failures:
                self._pending[username] = pending + 1
                return None
            if len(failures) < self.max_failures:
                # Only attempts still in flight fill the limit, and each ends
                # after one argon2 verification.
                return 1
            # The oldest failure still counted leaves the window first.
            wait = failures[-self.max_failures] + self.window_seconds - now
            return max(1, math.ceil(wait))

    def finish_attempt(self, username: str, succeeded: bool) -> bool:
        """Close an admitted attempt and return True when its failure starts a lock-out.

        A success clears the username's failures.
        """
        with self._lock:
            pending = self._pending.pop(username, 1) - 1
            if pending > 0:
                self._pending[username] = pending
            if succeeded:
                self._failures.pop(username, None)
                return False
            return self._add_failure(username)

    def _add_failure(self, username: str) -> bool:
        now = self._clock()
        if username not in self._failures:
            if len(self._failures) >= MAX_TRACKED_USERNAMES:
                self._forget_expired(now)
            if len(self._failures) >= MAX_TRACKED_USERNAMES:
                # NOTE: under a flood of distinct usernames the oldest entry is
                # dropped, so that account's count starts again.
                self._failures.pop(next(iter(self._failures)))
            self._failures[username] = deque()
        failures = self._recent_failures(username, now)
        failures.append(now)
        return len(failures) == self.max_failures

    def _recent_failures(self, username: str, now: float) -> deque[float]:
        failures = self._failures.get(username, deque())
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        return failures

    def _forget_expired(self, now: float) -> None:
        for username in list(self._failures):
            if not self._recent_failures(username, now):
                del self._failures[username]


def throttle_from_env(env: dict[str, str]) -> LoginThrottle:
    """Build the throttle, taking its limits from the environment when set."""
    max_failures = _read_number(env, "JARVIS_LOGIN_MAX_FAILURES", DEFAULT_MAX_FAILURES)
    window = _read_number(env, "JARVIS_LOGIN_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS)
    if max_failures != int(max_failures):
        raise ConfigError(
            f"invalid JARVIS_LOGIN_MAX_FAILURES: {max_failures} is not a whole number"
        )
    return LoginThrottle(max_failures=int(max_failures), window_seconds=window)


def _read_number(env: dict[str, str], key: str, default: float) -> float:
    raw = env.get(key) or ""
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"invalid {key}: {raw!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"invalid {key}: {raw!r}, expected a positive number")
    return value
