"""clients/python/README.md's producer and worker, run as written against a real server:
each under 30 lines; the producer's pushes arrive, the worker handles every one of them
and stops on SIGTERM, exit status 0, holding nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from pushpop_client import Client

from supervise.server import ServerProcess

README = Path(__file__).resolve().parents[2] / "clients" / "python" / "README.md"


def snippet(title: str) -> str:
    text = README.read_text()
    section = text.split(f"## {title}\n", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, f"no python block under '## {title}'"
    return found.group(1)


def test_producer_and_worker_as_written(servers: dict[str, ServerProcess], tmp_path: Path) -> None:
    producer, worker = snippet("A producer"), snippet("A worker")
    assert len(producer.splitlines()) < 30 and len(worker.splitlines()) < 30
    url = servers["sqlite"].url
    env = {**os.environ, "PUSHPOP_URL": url}
    with Client(url) as c:
        c.purge("emails")
        run = subprocess.run([sys.executable, "-c", producer], env=env, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert c.stats("emails").depth == 101
        proc = subprocess.Popen([sys.executable, "-c", worker], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                st = c.stats("emails")
                if st.depth == 0 and st.in_flight == 0:
                    break
                time.sleep(0.1)
            time.sleep(0.5)  # a few long-poll pops are waiting now
            proc.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert time.monotonic() - t0 < 5  # waiting pops were cut after the stop grace
        assert out.count("sending") == 101
        st = c.stats("emails")
        assert (st.depth, st.in_flight, st.locks) == (0, 0, 0)
