"""One SQLite database file, one embedded host, whatever path the second host names it by.

A hard link or a bind-mounted file is the same database under another name; every case
must end with the second host refused (exit 3, one line), or acknowledged pushes would go
to a WAL the first host never reads (docs/how-it-works.md, "The database claim").
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_helpers import ok
from test_single_writer import refused

from supervise.server import ServerProcess

ROOT = os.geteuid() == 0
MOUNT = shutil.which("mount")
needs_mount = pytest.mark.skipif(
    not (ROOT and MOUNT), reason="bind mounts need root and mount(8): not root here"
)


def second_host_is_refused(first: Path, second: Path, tmp_path: Path) -> None:
    """A host on ``first`` serves; one on ``second`` (the same file) exits 3 naming it;
    the first keeps serving and owns everything pushed."""
    with ServerProcess(sqlite_path=first, log_path=tmp_path / "a.log") as a:
        c = httpx.Client(base_url=a.url, timeout=30)
        items = [{"item": {"n": n}} for n in range(5)]
        ids = ok(c.post("/queue/q/push", json={"items": items}))["ids"]
        assert second.samefile(first)
        b = ServerProcess(sqlite_path=second, log_path=tmp_path / "b.log")
        try:
            m = refused(b)
        finally:
            b.stop()  # a no-op once refused; ends a host that wrongly started
        assert m.group(1) == "embedded" and int(m.group(2)) == a.pid
        got = ok(c.post("/queue/q/pop", params={"depth": 10}))["items"]
        assert [i["id"] for i in got] == ids


@pytest.fixture
def bind(tmp_path: Path) -> Iterator[list[Path]]:
    """Bind mounts made by a test, unmounted afterwards whatever happened."""
    mounts: list[Path] = []
    yield mounts
    for target in reversed(mounts):
        subprocess.run(["umount", "-l", str(target)], check=False)


def mount_bind(source: Path, target: Path, mounts: list[Path]) -> None:
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    mounts.append(target)


def started_database(tmp_path: Path) -> Path:
    """A database file that exists before any host runs (a hard link needs a file)."""
    real = tmp_path / "real" / "db.sqlite3"
    real.parent.mkdir()
    sqlite3.connect(real).execute("CREATE TABLE t (x)").connection.close()
    return real


def test_hard_link_is_refused(tmp_path: Path) -> None:
    real = started_database(tmp_path)
    hard = tmp_path / "hard.sqlite3"
    os.link(real, hard)
    second_host_is_refused(real, hard, tmp_path)


@needs_mount
def test_bind_mounted_file_is_refused(tmp_path: Path, bind: list[Path]) -> None:
    """What two containers mounting one host file do."""
    real = started_database(tmp_path)
    (tmp_path / "other").mkdir()
    target = tmp_path / "other" / "db.sqlite3"
    target.touch()
    mount_bind(real, target, bind)
    second_host_is_refused(real, target, tmp_path)


@needs_mount
def test_bind_mounted_directory_and_symlink_are_refused(tmp_path: Path, bind: list[Path]) -> None:
    """Two other paths to one file (a directory bind mount, a directory symlink): the
    inode lock refuses them too, whichever of the paths the first host was given."""
    real = started_database(tmp_path)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    mount_bind(real.parent, mirror, bind)
    link = tmp_path / "link"
    link.symlink_to(mirror, target_is_directory=True)
    for n, first in enumerate((mirror / "db.sqlite3", link / "db.sqlite3")):
        (logs := tmp_path / f"logs{n}").mkdir()
        second_host_is_refused(first, real, logs)


def test_hard_link_refuses_a_dapr_mode_claim_too(tmp_path: Path) -> None:
    """The claim modes hold across paths as well: an embedded host's file refuses a
    Dapr-mode (shared) claim through a hard link, and shared claims coexist."""
    from actor_service.stores.claim import ClaimRefused, SqliteClaim

    real = tmp_path / "db.sqlite3"
    hard = tmp_path / "hard.sqlite3"
    real.touch()
    os.link(real, hard)
    embedded = SqliteClaim(real, "exclusive")
    embedded.acquire()
    try:
        with pytest.raises(ClaimRefused, match=rf"embedded host \S+ pid {os.getpid()} since"):
            SqliteClaim(hard, "shared").acquire()
    finally:
        embedded.release()
    one, two = SqliteClaim(real, "shared"), SqliteClaim(hard, "shared")
    one.acquire()
    two.acquire()
    try:
        with pytest.raises(ClaimRefused, match=r"dapr host"):
            SqliteClaim(hard, "exclusive").acquire()
    finally:
        one.release()
        two.release()
