"""Run one variant (or a group) end to end: ``pushpop-bench run`` under the plan's name.

The orchestration itself is :mod:`load_tests.runner`.
"""

import sys


def main() -> None:
    """``python -m load_tests.scripts.run_scenario ...`` is ``pushpop-bench run ...``."""
    from load_tests.cli import app

    app(["run", *sys.argv[1:]])


if __name__ == "__main__":
    main()
