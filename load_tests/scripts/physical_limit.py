"""The service against raw PostgreSQL (pgbench): ``pushpop-bench limit`` under the plan's name.

The measurement itself is :mod:`load_tests.limit`.
"""

import sys


def main() -> None:
    """``python -m load_tests.scripts.physical_limit ...`` is ``pushpop-bench limit ...``."""
    from load_tests.cli import app

    app(["limit", *sys.argv[1:]])


if __name__ == "__main__":
    main()
