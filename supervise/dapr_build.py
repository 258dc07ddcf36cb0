"""Where the Dapr binaries live, and building them when they are missing.

``scripts/build_dapr.sh`` builds ``daprd``, ``placement`` and ``scheduler`` from the Go
module ``github.com/dapr/dapr`` at :data:`DAPR_VERSION`; the process supervision
(:mod:`.dapr_processes`), the launcher and the tests find them through here.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

DAPR_VERSION = "1.18.2"
"""The Dapr release ``scripts/build_dapr.sh`` builds (see tools/dapr-build/go.mod)."""

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_dapr.sh"
BINARIES = ("daprd", "placement", "scheduler")
OVERLAY_DIR = REPO_ROOT / "tools" / "dapr-build" / "overlay"


class DaprProcessError(RuntimeError):
    """A Dapr binary is missing, failed to build, exited early or never became ready."""


def dapr_install_dir() -> Path:
    """Where ``scripts/build_dapr.sh`` installs this Dapr version.

    ``PUSHPOP_DAPR_DIR`` overrides the default ``~/.cache/pushpop/dapr/<version>``;
    the script and this module must agree, so both read the same variable.
    """
    override = os.environ.get("PUSHPOP_DAPR_DIR")
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "pushpop" / "dapr" / DAPR_VERSION


def dapr_bin_dir() -> Path:
    """The directory holding ``daprd``, ``placement`` and ``scheduler``."""
    return dapr_install_dir() / "bin"


def overlay_sha() -> str:
    """Which patches (``tools/dapr-build/overlay``) a build carries: the script's value."""
    files = sorted(OVERLAY_DIR.glob("*.go.overlay"), key=lambda p: p.name.encode())
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:16]


def dapr_is_built() -> bool:
    """True if all three binaries exist and carry today's patches (what the build script
    checks to skip)."""
    bin_dir = dapr_bin_dir()
    if not all(os.access(bin_dir / name, os.X_OK) for name in BINARIES):
        return False
    try:
        return (bin_dir / ".overlay-sha").read_text().strip() == overlay_sha()
    except OSError:
        return False


def ensure_dapr_built(*, timeout: float = 1800.0) -> Path:
    """Return :func:`dapr_bin_dir`, building Dapr first if a binary is missing.

    The build takes several minutes on a cold Go cache, so its progress is left
    on our stderr rather than captured. Raises :class:`DaprProcessError` if the
    script fails (e.g. ``go`` is not installed).
    """
    if dapr_is_built():
        return dapr_bin_dir()
    if not BUILD_SCRIPT.is_file():
        raise DaprProcessError(f"build script not found: {BUILD_SCRIPT}")
    try:
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            stdout=subprocess.DEVNULL,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise DaprProcessError(f"{BUILD_SCRIPT} did not finish in {timeout:.0f} s") from exc
    if result.returncode != 0 or not dapr_is_built():
        raise DaprProcessError(
            f"{BUILD_SCRIPT} failed (exit code {result.returncode}); see its output above"
        )
    return dapr_bin_dir()


__all__ = [
    "DAPR_VERSION",
    "DaprProcessError",
    "dapr_bin_dir",
    "dapr_install_dir",
    "dapr_is_built",
    "ensure_dapr_built",
]
