"""Two hosts, one control plane, one PostgreSQL; and the deployment files for more.

The two-host test runs two ``pushpop serve --runtime dapr`` (each an app with its own
daprd) that join ONE placement and scheduler started here, on ONE database: placement
spreads the queue actors over both hosts, a request to either host reaches any queue,
and when one host is SIGKILLed (app and sidecar), its actors move to the other one
without losing an acknowledged push.

The deployment tests validate ``docker-compose.yml`` with ``docker-compose config -q``
(installed by ``scripts/setup.sh``) and parse the Kubernetes manifests in
``deploy/k8s``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from http_helpers import drain, ok
from server_helpers import pg_database

from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess, wait_ready

ROOT = Path(__file__).resolve().parents[2]
QUEUES = 50
FAILOVER = 15.0  # seconds until every queue of the crashed host is served again


def host(tmp: Path, name: str, control_plane: tuple[str, str], url: str) -> ServerProcess:
    placement, scheduler = control_plane
    return ServerProcess(
        store="postgres",
        database_url=url,
        runtime="dapr",
        log_path=tmp / f"host-{name}.log",
        env={
            "PUSHPOP_PLACEMENT_ADDRESS": placement,
            "PUSHPOP_SCHEDULER_ADDRESS": scheduler,
            "PUSHPOP_DAPR_RUN_DIR": str(tmp / f"host-{name}-dapr"),
            "PUSHPOP_DAPR_RUNINFO": str(tmp / f"host-{name}.json"),
            "PUSHPOP_DAPR_LOG_LEVEL": "info",  # what one reads when this test fails
        },
    )


def active_actors(url: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("pushpop_active_actors "):
            return float(line.split()[1])
    raise AssertionError("no pushpop_active_actors in /metrics")


@pytest.mark.dapr
def test_two_hosts_one_placement_and_a_host_crash(
    pg: PostgresServer, control_plane: tuple[str, str], tmp_path: Path
) -> None:
    url = pg_database(pg, "pushpop_cluster")
    a, b = host(tmp_path, "a", control_plane, url), host(tmp_path, "b", control_plane, url)
    try:
        a.start(60)
        b.start(60)
        wait_ready(a.url, 60)
        wait_ready(b.url, 60)
        run = uuid.uuid4().hex[:8]

        # 1. push into 50 queues through A, pop through B: all there, once, in order
        queues = [f"c-{run}-{i}" for i in range(QUEUES)]
        ca = httpx.Client(base_url=a.url, timeout=30)
        cb = httpx.Client(base_url=b.url, timeout=30)
        for q in queues:
            for k in range(3):
                entries = [{"item": {"q": q, "n": n}, "priority": n % 3}
                           for n in range(k * 10, k * 10 + 10)]  # fmt: skip
                ok(ca.post(f"/queue/{q}/push", json={"items": entries}))
        # placement spread the actors over both hosts (each counts only its own)
        assert active_actors(a.url) > 0 and active_actors(b.url) > 0
        for q in queues:
            got = [(i["priority"], i["item"]["n"]) for i in drain(cb, q)]
            assert got == sorted((n % 3, n) for n in range(30)), q

        # 2. pushers on both hosts; SIGKILL host A (app and its daprd) mid-run
        queues = [f"k-{run}-{i}" for i in range(QUEUES)]
        acked: dict[str, list[tuple[int, float]]] = {q: [] for q in queues}
        statuses: list[int] = []
        events: list[tuple[float, str, int, str]] = []  # for the failure message
        a_up = threading.Event()
        a_up.set()
        stop = threading.Event()

        def pusher(q: str) -> None:
            with httpx.Client(timeout=20) as c:
                n = 0
                while not stop.is_set():
                    target = a.url if a_up.is_set() and n % 2 == 0 else b.url
                    try:
                        r = c.post(f"{target}/queue/{q}/push",
                                   json={"item": {"n": n}, "priority": n % 3})  # fmt: skip
                    except httpx.TransportError:  # host A's socket went away
                        r = None
                    status, text = (r.status_code, r.text[:120]) if r else (0, "")
                    events.append((time.monotonic(), target[-5:], status, text))
                    if r is not None:
                        statuses.append(r.status_code)
                        if r.status_code == 200:
                            acked[q].append((n, time.monotonic()))
                    n += 1

        with ThreadPoolExecutor(QUEUES) as pool:
            for q in queues:
                pool.submit(pusher, q)
            time.sleep(3)
            a.kill()
            a_up.clear()
            killed = time.monotonic()
            # failover: until every queue has taken a push again (all through B now)
            while not all(any(t > killed for _, t in acked[q]) for q in queues):
                if time.monotonic() - killed > FAILOVER:
                    break
                time.sleep(0.1)
            failover = time.monotonic() - killed
            time.sleep(2)
            stop.set()

        counts = {x: statuses.count(x) for x in set(statuses)}
        print(f"failover after the crash: {failover:.2f}s; statuses {counts}")
        assert set(statuses) <= {200, 503}, sorted(set(statuses))
        timeline = "\n".join(f"{t - killed:+.2f} {h} {st} {txt}" for t, h, st, txt in events
                             if st != 200 and t > killed - 1)[-3000:]  # fmt: skip
        assert failover < FAILOVER, f"queues not served {FAILOVER}s after the crash\n{timeline}"
        # every queue is now hosted by B
        assert active_actors(b.url) >= QUEUES
        lost, dup = {}, {}
        for q in queues:
            items = drain(cb, q)
            got = [i["item"]["n"] for i in items]
            if len(got) != len(set(got)):
                dup[q] = got
            missing = {n for n, _ in acked[q]} - set(got)
            if missing:
                lost[q] = sorted(missing)
            assert [i["priority"] for i in items] == sorted(i["priority"] for i in items), q
            for p in range(3):
                mine = [n for n in got if n % 3 == p]
                assert mine == sorted(mine), f"{q}: FIFO broken in priority {p}"
        assert not lost, f"acknowledged pushes lost: {lost}"
        assert not dup, f"items delivered twice: {dup}"
    finally:
        b.stop()
        a.stop()


# ---------------------------------------------------------------------- deployment files
def test_compose_file_is_valid() -> None:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose not installed (scripts/setup.sh installs it)"
    for profile in ([], ["--profile", "scale"]):
        out = subprocess.run([exe, "-f", "docker-compose.yml", *profile, "config", "-q"],
                             capture_output=True, text=True, cwd=ROOT)  # fmt: skip
        assert out.returncode == 0, out.stderr
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    assert {"postgres", "placement", "scheduler", "api-server", "daprd", "api-server-2", "daprd-2",
            "lb", "locust", "locust-master", "locust-worker"} <= set(services)  # fmt: skip
    assert services["daprd"]["network_mode"] == "service:api-server"
    assert services["daprd-2"]["network_mode"] == "service:api-server-2"
    for name in ("postgres", "api-server", "api-server-2"):
        assert "healthcheck" in services[name], name
    # daprd gets the same flags as the launcher's: body size, no-retry resiliency
    command = services["daprd"]["command"]
    assert "--max-body-size=32Mi" in command and "--resources-path=/dapr/resiliency" in command
    # secrets: nothing but ${VAR:-local default}
    text = (ROOT / "docker-compose.yml").read_text()
    for line in text.splitlines():
        if any(w in line for w in ("PASSWORD:", "TOKEN:", "postgres://", "postgresql://")):
            assert "${" in line, f"literal secret in docker-compose.yml: {line.strip()}"


def test_compose_runs_the_load_plans_locust_commands() -> None:
    """``docker-compose run --rm locust -f /home/locust/scenarios/s3_mixed.py --host
    http://api-server:8000 ... --csv /home/locust/results/x`` resolves as the plan says:
    Locust is the entrypoint, the plan's files are where it names them, and the results
    volume is ./results on the host."""
    out = subprocess.run(
        [shutil.which("docker-compose") or "docker-compose", "-f", "docker-compose.yml",
         "--profile", "tools", "config"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    services = yaml.safe_load(out.stdout)["services"]
    gateway = services["api-server"]
    assert any(str(p).split(":")[-1].startswith("8000") for p in gateway["ports"])
    for name in ("locust", "locust-master", "locust-worker"):
        svc = services[name]
        assert svc["entrypoint"] == ["locust"] and svc["working_dir"] == "/home/locust", name
        # docker-compose 1.x prints SOURCE:TARGET[:MODE] strings
        mounts = {v.split(":")[1]: Path(v.split(":")[0]) for v in svc["volumes"]}
        assert mounts["/home/locust/results"] == ROOT / "results", name
        # the container paths the plan uses exist in the mounted sources
        assert (mounts["/home/locust/scenarios"] / "s3_mixed.py").exists()
        assert (mounts["/home/locust/locustfile.py"]).samefile(ROOT / "load_tests/locustfile.py")
        assert (mounts["/home/locust/scripts"] / "check_thresholds.py").exists()
        assert {"api-server", "locust-master"} & set(svc["depends_on"]), name
    assert services["locust"]["profiles"] == ["tools"]  # `up` does not start a one-off run
    master = services["locust-master"]["command"]
    assert "http://api-server:8000" in master and "locustfile.py,shapes.py" in master


def k8s_documents() -> list[dict]:
    docs = []
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_k8s_manifests_parse_and_wire_up(tmp_path: Path) -> None:
    docs = k8s_documents()
    kinds = {(d["apiVersion"], d["kind"]) for d in docs}
    dapr = "dapr.io/v1alpha1"
    assert {("apps/v1", "Deployment"), ("v1", "Service"), (dapr, "Component"),
            (dapr, "Configuration"), (dapr, "Resiliency")} <= kinds  # fmt: skip
    for d in docs:
        assert d["metadata"].get("name"), d
        assert d["kind"] != "Secret", "secrets do not belong in the manifests"
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    ann = deploy["spec"]["template"]["metadata"]["annotations"]
    assert ann["dapr.io/enabled"] == "true" and ann["dapr.io/app-id"] == "pushpop"
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert int(ann["dapr.io/app-port"]) == container["ports"][0]["containerPort"]
    config = next(d for d in docs if d["kind"] == "Configuration")
    assert ann["dapr.io/config"] == config["metadata"]["name"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PUSHPOP_DAPR_SIDECAR"]["value"] == "external"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    component = next(d for d in docs if d["kind"] == "Component")
    assert component["spec"]["type"] == "state.postgresql" and component["spec"]["version"] == "v1"
    meta = {m["name"]: m for m in component["spec"]["metadata"]}
    assert meta["actorStateStore"]["value"] == "true"
    assert "secretKeyRef" in meta["connectionString"], "no connection string in the manifest"
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["spec"]["selector"].items() <= deploy["spec"]["selector"]["matchLabels"].items()
    # Strict schema validation, offline: scripts/k8s_tools.sh (run by the test command)
    # installs kubeconform and fetches the schema sources from the Go module proxy.
    tools = Path(os.environ.get("PUSHPOP_TOOLS_DIR", Path.home() / ".cache/pushpop/tools"))
    exe = tools / "bin" / "kubeconform"
    assert exe.exists(), f"{exe} missing: run scripts/k8s_tools.sh"
    sys.path.insert(0, str(ROOT / "deploy" / "k8s"))
    import kubeconform_schemas as ks

    assert ks.default_swagger() and ks.default_dapr_crds(), "run scripts/k8s_tools.sh"
    subprocess.run([sys.executable, str(ROOT / "deploy/k8s/kubeconform_schemas.py"),
                    str(tmp_path)], check=True, capture_output=True)  # fmt: skip
    out = subprocess.run(
        [exe, "-strict", "-summary", "-schema-location",
         str(tmp_path) + "/{{ .ResourceKind }}{{ .KindSuffix }}.json",
         str(ROOT / "deploy" / "k8s")], capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Invalid: 0" in out.stdout and "Errors: 0" in out.stdout, out.stdout


def test_resiliency_is_the_same_everywhere() -> None:
    """Launcher, Compose and Kubernetes all turn daprd's actor retries off."""
    from supervise.dapr_host import RESILIENCY

    launcher = yaml.safe_load(RESILIENCY)
    compose = yaml.safe_load((ROOT / "deploy/compose/resiliency.yaml").read_text())
    k8s = next(d for d in k8s_documents() if d["kind"] == "Resiliency")
    k8s = {k: v for k, v in k8s.items() if k != "scopes"}
    assert launcher == compose == k8s
    assert launcher["spec"]["targets"]["actors"]["QueueActor"] == {"retry": "noRetry"}
    assert launcher["spec"]["policies"]["retries"]["noRetry"]["maxRetries"] == 0


def test_k8s_component_matches_the_local_one() -> None:
    local = yaml.safe_load((ROOT / "components" / "postgres" / "statestore.yaml").read_text())
    comp = next(d for d in k8s_documents() if d["kind"] == "Component")
    assert comp["metadata"]["name"] == local["metadata"]["name"] == "statestore"
    assert (comp["spec"]["type"], comp["spec"]["version"]) == (
        local["spec"]["type"], local["spec"]["version"])  # fmt: skip
    values = lambda spec: {m["name"]: m.get("value") for m in spec["spec"]["metadata"]}  # noqa: E731
    for key in ("actorStateStore", "tableName", "metadataTableName"):
        assert values(comp)[key] == values(local)[key], key
