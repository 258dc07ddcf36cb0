"""The ``--pushpop-*`` options are declared once (fields of ``Options``): what the headless
child writes is what Locust's parser reads back, field for field, with the defaults.

Locust monkey-patches the process it is imported in (gevent), so the parsing runs in a
child Python, as every Locust run of this suite does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, fields

from load_tests.scenarios.options import Options

PARSE = """
import json, sys
from types import SimpleNamespace
import locust
from locust.argument_parser import get_parser
from load_tests.scenarios.listeners import register_listeners
from load_tests.scenarios.options import Options
from dataclasses import asdict
register_listeners(locust.events)
ns = get_parser().parse_args(json.loads(sys.argv[1]))
print(json.dumps(asdict(Options.of(SimpleNamespace(parsed_options=ns)))))
"""


def parsed(argv: list[str]) -> Options:
    out = subprocess.run([sys.executable, "-c", PARSE, json.dumps(argv)],
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return Options(**json.loads(out.stdout.strip().splitlines()[-1]))


def test_options_round_trip_through_locusts_parser() -> None:
    chosen = Options(model="open", out="/tmp/x", run_id="r1", time_scale=0.25, bucket=2.0,
                     drain_limit=0, generators=3, depth_interval=0.5)  # fmt: skip
    # every field differs from its default, so none can be silently dropped
    assert all(getattr(chosen, f.name) != f.default for f in fields(Options))
    assert asdict(parsed(chosen.to_argv())) == asdict(chosen)


def test_defaults_without_options_and_zero_means_default() -> None:
    assert parsed([]) == Options()
    assert parsed(["--pushpop-time-scale", "0", "--pushpop-generators", "0"]) == Options()
