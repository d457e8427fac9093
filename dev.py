"""Install jarvisctl into ./.venv when needed, then run one task.

    python3 dev.py up      install, then bring the whole stack up
    python3 dev.py test    install, then run the test suite

Only the Python standard library is used here, so this works on a machine
that has nothing but Python 3.11 or newer.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed"
INPUTS = ("pyproject.toml", "constraints.txt")
TASKS = {
    "up": ["bin/jarvisctl", "up"],
    "test": ["bin/python", "-m", "pytest"],
}


def fingerprint() -> str:
    digest = hashlib.sha256()
    for name in INPUTS:
        path = ROOT / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def install() -> None:
    wanted = fingerprint()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (VENV / "bin" / "python").exists():
        print("Creating .venv", flush=True)
        venv.create(VENV, with_pip=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    print("Installing jarvisctl and its dependencies into .venv", flush=True)
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    constraints = ["-c", str(ROOT / "constraints.txt")]
    subprocess.run([*pip, *constraints, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):
        print("dev.py: Python 3.11 or newer is required", file=sys.stderr)
        return 2
    if not argv or argv[0] not in TASKS:
        print(f"usage: python3 dev.py {{{','.join(TASKS)}}} [ARGS...]", file=sys.stderr)
        return 2
    try:
        install()
    except subprocess.CalledProcessError as error:
        print(f"dev.py: installing failed (exit {error.returncode})", file=sys.stderr)
        return 1
    command = [str(VENV / TASKS[argv[0]][0]), *TASKS[argv[0]][1:], *argv[1:]]
    os.chdir(ROOT)
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
