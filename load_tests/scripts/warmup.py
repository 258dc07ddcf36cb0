"""Wait until the service is healthy and ready, then warm it up.

Why: the first requests pay for things a steady state does not (connection pools
filling, actor activation, Python's lazy imports); measuring them would put cold-start
noise into every scenario's first seconds. This is ``pushpop-bench warmup`` under the
load plan's name; the warm-up itself is :mod:`load_tests.warmup`.

    python -m load_tests.scripts.warmup --host http://127.0.0.1:8000
    ./load_tests/scripts/warmup.sh [--host URL]      # the load plan's name for it
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file, as the load plan does
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from load_tests.cli import single_command_app, warmup_command

app = single_command_app(warmup_command, __doc__)

if __name__ == "__main__":
    app()
