"""``make run`` on a Debian machine whose ``python3`` is the system one (PEP 668).

A fresh clone, Debian's own ``/usr/bin/python3`` first on ``PATH`` and nothing else of
this environment: ``scripts/setup.sh run`` must build ``.venv`` from it (never
pip-installing into it), be a no-op the second time, and leave a server that answers.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from supervise.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PY = Path("/usr/bin/python3")
pytestmark = pytest.mark.skipif(not SYSTEM_PY.exists(), reason="no Debian python3")


def test_make_run_setup_with_the_system_python_first_on_path(tmp_path: Path) -> None:
    clone = tmp_path / "pushpop"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {"HOME": os.environ.get("HOME", str(tmp_path)), "PATH": "/usr/bin:/bin"}
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT", "SSL_CERT_FILE"):
        if var in os.environ:  # how this machine reaches the package index
            env[var] = os.environ[var]
    first = subprocess.run(
        ["bash", "scripts/setup.sh", "run"], cwd=clone, env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    assert "externally-managed-environment" not in first.stderr
    cfg = (clone / ".venv" / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in cfg, cfg  # built from the system python, not ours
    t0 = time.monotonic()
    again = subprocess.run(["bash", "scripts/setup.sh", "run"], cwd=clone, env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert again.returncode == 0 and "installing" not in again.stdout, again.stdout
    assert time.monotonic() - t0 < 10
    # the system python itself got nothing
    system = subprocess.run([str(SYSTEM_PY), "-c", "import api.cli"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert system.returncode != 0

    port = free_port()
    server = subprocess.Popen(
        [str(clone / ".venv" / "bin" / "python"), "-m", "api.cli", "serve", "--port", str(port)],
        cwd=clone, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "pushpop serve exited"
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "no /health within 60 s"
                time.sleep(0.3)
        assert r.status_code == 200 and r.json() == {"status": "ok"}
    finally:
        server.terminate()
        server.wait(timeout=20)
