"""One settings object per program: every PUSHPOP_* knob is a field of api.settings.Settings,
read in one place, so a reader finds each setting (and its default) in one file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_no_environment_reads_outside_settings() -> None:
    pattern = re.compile(r"os\.environ(\.get)?[\[(]|os\.getenv\(")
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in [*ROOT.glob("api/**/*.py"), *ROOT.glob("actor_service/**/*.py")]
        # testing.py builds a child's environment; the process supervisors (PostgreSQL and
        # Dapr binaries for tests and the launcher) read where their binaries live
        if p.name not in ("settings.py", "testing.py", "build.py", "processes.py", "pgserver.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, offenders


def test_from_env_reads_fields_booleans_and_dapr_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUSHPOP_ALLOW_OPEN", "1")
    monkeypatch.setenv("PUSHPOP_PROTECT_METRICS", "false")
    monkeypatch.setenv("PUSHPOP_MAX_LOCK_LIFETIME", "60.5")
    monkeypatch.setenv("DAPR_GRPC_PORT", "51234")
    monkeypatch.setenv("DAPR_HTTP_PORT", "3999")
    monkeypatch.setenv("PUSHPOP_DAPR_HTTP_PORT", "4000")  # ours wins over Dapr's
    s = Settings.from_env(port=9001)
    assert (s.allow_open, s.protect_metrics, s.max_lock_lifetime) == (True, False, 60.5)
    assert (s.dapr_grpc_port, s.dapr_http_port, s.port) == (51234, 4000, 9001)
