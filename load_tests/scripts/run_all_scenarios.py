"""Run every scenario and write one index: ``pushpop-bench run-all`` under the plan's name.

The orchestration itself is :mod:`load_tests.runner`.
"""

import sys


def main() -> None:
    """``python -m load_tests.scripts.run_all_scenarios ...`` is ``pushpop-bench run-all ...``."""
    from load_tests.cli import app

    app(["run-all", *sys.argv[1:]])


if __name__ == "__main__":
    main()
