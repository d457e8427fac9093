"""The fixed user directory of the demo stack, with argon2 password hashes.

Passwords come from the settings and live in memory only as argon2id hashes,
computed once at start-up. pwdlib 0.4.2's default argon2 cost (t=3, m=64 MiB,
p=4) took about 0.1 s per hash on a 2-core test machine, so the five hashes at
start-up (four users and the decoy) cost well under a second. That is why the
default cost is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

DEFAULT_DEMO_PASSWORD = "demo123"
DEFAULT_ADMIN_PASSWORD = "admin123"
DEMO_USERS = (("vishal", "developer"), ("happy", "devops"), ("alex", "developer"))
ADMIN_USER = ("admin", "admin")


@dataclass(frozen=True)
class User:
    """One account that may log in."""

    username: str
    role: str
    password_hash: str


class UserDirectory:
    """Looks up users and checks their passwords against the stored hashes."""

    def __init__(self, users: list[User], hasher: PasswordHash) -> None:
        self._users = {user.username: user for user in users}
        self._hasher = hasher
        # Verified against when the username is unknown, so that a miss costs
        # one argon2 verification like a wrong password does.
        self._decoy_hash = hasher.hash("decoy password for unknown users")

    def get(self, username: str) -> User | None:
        return self._users.get(username)

    def usernames(self) -> list[str]:
        return sorted(self._users)

    def authenticate(self, username: str, password: str) -> tuple[User | None, str]:
        """Check a login and return the user, or None with the reason it failed."""
        user = self._users.get(username)
        if user is None:
            self._hasher.verify(password, self._decoy_hash)
            return None, "unknown user"
        if not self._hasher.verify(password, user.password_hash):
            return None, "invalid password"
        return user, ""


def build_directory(env: dict[str, str]) -> UserDirectory:
    """Hash the configured passwords and return the directory of all users."""
    hasher = PasswordHash((Argon2Hasher(),))
    demo_password = env.get("JARVIS_DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD
    admin_password = env.get("JARVIS_ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD
    users = [
        User(username, role, hasher.hash(demo_password))
        for username, role in DEMO_USERS
    ]
    admin_name, admin_role = ADMIN_USER
    users.append(User(admin_name, admin_role, hasher.hash(admin_password)))
    return UserDirectory(users, hasher)
