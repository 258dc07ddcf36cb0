"""The client package type-checks under ``mypy --strict`` (its users' checkers see the same
annotations: it ships ``py.typed``) and depends on nothing but httpx at import time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "python"


def test_mypy_strict(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
         "pushpop_client"],
        cwd=CLIENT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert (CLIENT / "pushpop_client" / "py.typed").is_file()


def test_imports_nothing_of_the_server() -> None:
    probe = (
        "import sys, pushpop_client\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('api', 'actor_service', 'fastapi', 'dapr', 'psycopg', 'uvicorn'))\n"
        "assert not bad, bad\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], cwd=CLIENT, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
