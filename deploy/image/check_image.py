"""`make check-image`: run the image built by `make image` as an operator would, and time each step.

    python deploy/image/check_image.py [--image NAME] [--results FILE]      # as root (podman, PostgreSQL)

1. One container with `podman run`: the image's own user, a read-only root, /tmp a tmpfs, the SQLite
   feedback store in a named volume; /healthz, the readiness endpoint, /, /predict, /number, POST /feedback
   and the export answer; the entry survives a new container on the same volume.
2. The fleet: a real PostgreSQL as the shared feedback store, three replicas of deploy/k8s/deployment.yaml
   by `podman kube play` (fleet.py says what podman runs of the spec and what is scripted), nginx in front
   (deploy/nginx/, per-client limits raised for the load). What podman applied of the spec is read back.
3. Through nginx: every route answers, and feedback sent to each replica lands in the one store.
4. The store goes down: feedback is 503, every replica stays ready and /predict answers; the store comes back
   and feedback is stored again.
5. A rolling restart of every replica under steady /predict and /number load: a new pod ready and in nginx
   first; then the old one's preStop hook and SIGTERM with the grace period, while it leaves nginx a second
   after its termination began, as endpoints reach a cluster's proxies late. 0 failed requests.
Writes deploy/image/RESULTS.md from this run (and build/image/builds.jsonl's build timings); exits 1 unless
every step passed.
"""

import argparse
import http.client
import json
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import samples
from build import IMAGE, RECORDS
from fleet import FALLBACK_READINESS, Front, Replica, http_get, load_deployment
from load import Load
from podman import container_state, podman, remove_container, succeeds
from postgres import Postgres

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # serve.front renders nginx's configuration

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PREFIX = "digit-kiosk-check"
ADMIN_TOKEN = "check-image-admin-token"
REPLICAS = 3
# The load comes from one address: nginx's and the app's per-client limits are raised for it.
PER_CLIENT_LIMIT = 100_000  # requests per second to nginx, feedback posts a minute and a day to the app
PER_CLIENT_CONNECTIONS = 1024  # nginx's limit_conn stays below 65,536
LOAD_CLIENTS = 4
SETTLE_SECONDS = 3  # load before the first and after the last replacement
ENDPOINTS_LAG_SECONDS = 1.0  # from a pod's termination until nginx stops sending it requests


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="check_image.py", description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=IMAGE, help="the image to run (default %(default)s, `make image`)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the report to write (default %(default)s)")
    return parser.parse_args(argv)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(port, method, path, body=None, content_type=None, token=None, timeout=30):
    """(status, headers, body bytes) of one request to 127.0.0.1:port."""
    headers = {"Content-Type": content_type} if content_type else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def wait_for(port, path, seconds, container=None):
    deadline = time.monotonic() + seconds
    while http_get(port, path) != 200:
        state = container_state(container) if container else None
        if state and state.get("Status") == "exited":
            raise RuntimeError(f"{container} exited with status {state.get('ExitCode')}: "
                               f"{podman('logs', '--tail', '20', container, quiet=True, check=False)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} on port {port} did not answer 200 within {seconds} s")
        time.sleep(0.2)


def readiness_path(port, wanted):
    """The readiness endpoint this server has: `wanted` (the Deployment's), else /healthz."""
    return wanted if http_get(port, wanted) != 404 else FALLBACK_READINESS


def check_routes(port, readiness):
    """Every route an operator needs, on one address; returns (passed, text, the /predict answer)."""
    found = {}
    status, _, _ = request(port, "GET", "/healthz")
    found["/healthz"] = status
    found[readiness] = request(port, "GET", readiness)[0]
    status, headers, _ = request(port, "GET", "/")
    found["/"] = status if headers.get("Content-Type", "").startswith("text/html") else f"{status} not HTML"
    status, _, body = request(port, "POST", "/predict", samples.DIGIT_PNG, "image/png")
    answer = json.loads(body) if status == 200 else {}
    found["/predict"] = status if answer.get("digit") == samples.DIGIT else f"{status} {body[:80]!r}"
    status, _, body = request(port, "POST", "/number", samples.NUMBER_PNG, "image/png")
    number = json.loads(body).get("number") if status == 200 else None
    found["/number"] = status if number == samples.NUMBER else f"{status} {body[:80]!r}"
    status, _, body = request(port, "POST", "/feedback", samples.feedback_body(answer), "application/json") \
        if answer else (None, None, b"")
    found["POST /feedback"] = status
    expected = {"/healthz": 200, readiness: 200, "/": 200, "/predict": 200, "/number": 200, "POST /feedback": 201}
    passed = found == expected
    text = ", ".join(f"`{route}` {status}" for route, status in found.items())
    return passed, text, answer


def stopped_by(exit_code):
    """How a stopped server ended, from its exit status."""
    if exit_code == 137:
        return "exit status 137: killed after the grace period, SIGTERM did not stop it"
    if exit_code in (0, 143):
        return f"exit status {exit_code}: ended on SIGTERM"
    return f"exit status {exit_code}"


def exported_ids(port):
    status, _, body = request(port, "GET", "/feedback/export?format=jsonl", token=ADMIN_TOKEN)
    if status != 200:
        raise RuntimeError(f"/feedback/export answered {status}: {body[:200]!r}")
    return [json.loads(line)["id"] for line in body.decode().splitlines() if line.strip()]


class Check:
    def __init__(self, args):
        self.args = args
        self.steps = []  # (step, seconds, result, passed)
        self.work = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-"))
        self.deployment = load_deployment()
        self.replicas = []
        self.postgres = None
        self.front = None
        self.load = None
        self.numbering = iter(range(1, 1000))

    def step(self, name, function):
        print(f"check-image: {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            passed, result = function()
        except Exception as error:  # the report says which step broke and how, then the next steps run
            traceback.print_exc()
            passed, result = False, f"error: {str(error).strip()[:600]}"
        seconds = time.monotonic() - started
        self.steps.append((name, seconds, result, passed))
        print(f"{'pass' if passed else 'FAIL'}: {name} ({seconds:.1f} s): {result}", file=sys.stderr, flush=True)
        return passed

    # 1. One container, as an operator runs it.
    def single_container(self):
        volume = f"{PREFIX}-feedback"
        podman("volume", "rm", "--force", volume, quiet=True, check=False)
        podman("volume", "create", volume, quiet=True)
        port = free_port()
        container = f"{PREFIX}-single"
        run = ["run", "--detach", "--network", "host", "--read-only", "--read-only-tmpfs=false",
               "--tmpfs", "/tmp:rw,size=64m,mode=1777", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
               "--volume", f"{volume}:/var/lib/digit-kiosk", "--env", f"PORT={port}",
               "--env", f"SERVE_ADMIN_TOKEN={ADMIN_TOKEN}"]
        podman(*run, "--name", container, self.args.image)
        started = time.monotonic()
        wait_for(port, "/healthz", 60, container)
        up_seconds = time.monotonic() - started
        readiness = readiness_path(port, self.deployment_readiness())
        passed, text, _ = check_routes(port, readiness)
        # The Containerfile's HEALTHCHECK, run once by hand: podman schedules it with systemd, absent here.
        healthy = "healthy" if succeeds("healthcheck", "run", container) else "unhealthy or missing"
        user = podman("exec", container, "id", "-u", quiet=True).strip()
        write = podman("exec", container, "sh", "-c", "touch /app/x 2>&1 || true", quiet=True).strip()
        ids = exported_ids(port)
        stop_seconds, exit_code = self.stop_container(container)
        # A new container on the same volume: the store outlives its container.
        podman(*run, "--name", f"{container}-2", self.args.image)
        wait_for(port, "/healthz", 60, f"{container}-2")
        kept = exported_ids(port)
        self.stop_container(f"{container}-2")
        podman("volume", "rm", "--force", volume, quiet=True, check=False)
        passed = (passed and healthy == "healthy" and user != "0" and "Read-only file system" in write
                  and len(ids) == 1 and kept == ids)
        return passed, (f"up in {up_seconds:.1f} s as uid {user}, root read-only ({write.split(': ')[-1]}); {text}; "
                        f"HEALTHCHECK {healthy}; "
                        f"the entry is in the volume's store after a new container: {kept == ids}; "
                        f"stopped in {stop_seconds:.1f} s ({stopped_by(exit_code)})")

    def stop_container(self, container):
        grace = int(self.deployment["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30))
        started = time.monotonic()
        podman("stop", "--time", grace, container, quiet=True)
        seconds = time.monotonic() - started
        exit_code = (container_state(container) or {}).get("ExitCode")
        remove_container(container)
        return seconds, exit_code

    def deployment_readiness(self):
        container = self.deployment["spec"]["template"]["spec"]["containers"][0]
        return container.get("readinessProbe", {}).get("httpGet", {}).get("path", FALLBACK_READINESS)

    # 2. The fleet.
    def replica_env(self):
        return {"SERVE_FEEDBACK_URL": self.postgres.url, "SERVE_ADMIN_TOKEN": ADMIN_TOKEN,
                "SERVE_FEEDBACK_RATE_PER_MINUTE": PER_CLIENT_LIMIT, "SERVE_FEEDBACK_MAX_PER_CLIENT_DAY": PER_CLIENT_LIMIT,
                "SERVE_TRUSTED_PROXIES": 1}  # nginx in front names the client, as `make front` has it

    def new_replica(self):
        replica = Replica(self.deployment, f"{PREFIX}-{next(self.numbering)}", free_port(), self.replica_env(), self.work)
        replica.remove()  # left over from an interrupted run
        return replica.play()

    def start_fleet(self):
        image = self.deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        if image != self.args.image:  # the manifest names a registry; IfNotPresent takes the local image
            podman("tag", self.args.image, image, quiet=True)
        self.postgres = Postgres(free_port()).start()
        times = {}
        started = time.monotonic()
        self.replicas = [self.new_replica() for _ in range(REPLICAS)]
        for replica in self.replicas:
            replica.wait_until_started()
        times["3 pods played and ready"] = time.monotonic() - started
        started = time.monotonic()
        self.front = Front(free_port(), self.work / "nginx", PER_CLIENT_LIMIT, PER_CLIENT_CONNECTIONS)
        self.front.route_to([replica.port for replica in self.replicas])
        wait_for(self.front.port, "/healthz", 30)
        times["nginx up"] = time.monotonic() - started
        applied = self.replicas[0].inspect()
        limits = self.replicas[0].container_spec.get("resources", {}).get("limits", {})
        passed = (applied["user"].split(":")[0] not in ("", "0", "root") and applied["read_only_root"]
                  and "Read-only file system" in applied["process_status"] and "NoNewPrivs:\t1" in applied["process_status"]
                  and applied["capabilities"] == "[]" and applied["memory_limit_mib"] > 0 and "/tmp" in applied["mounts"])
        timing = ", ".join(f"{what} in {seconds:.1f} s" for what, seconds in times.items())
        return passed, (f"{timing}; applied from the pod spec: user {applied['user']}, read-only root "
                        f"{applied['read_only_root']}, capabilities {applied['capabilities']}, "
                        f"{' '.join(applied['process_status'].split()[:4])}, memory limit {applied['memory_limit_mib']} Mi "
                        f"(spec {limits.get('memory')}), CPU limit {applied['cpu_limit']} (spec {limits.get('cpu')}), "
                        f"mounts {applied['mounts']}; readiness probed on `{self.replicas[0].readiness_path}`")

    # 3. Through nginx, one store.
    def through_nginx(self):
        readiness = self.replicas[0].readiness_path
        passed, text, answer = check_routes(self.front.port, readiness)
        for replica in self.replicas:  # each replica writes one entry into the shared store
            status, _, _ = request(replica.port, "POST", "/feedback", samples.feedback_body(answer), "application/json")
            passed = passed and status == 201
        counts = [len(exported_ids(replica.port)) for replica in self.replicas]
        passed = passed and counts == [1 + REPLICAS] * REPLICAS
        return passed, f"{text}; entries each replica exports from the shared store: {counts}"

    # 4. The store goes down and comes back.
    def store_outage(self):
        answer = json.loads(request(self.front.port, "POST", "/predict", samples.DIGIT_PNG, "image/png")[2])
        self.postgres.stop()
        status, headers, body = request(self.front.port, "POST", "/feedback", samples.feedback_body(answer),
                                        "application/json")
        down = status == 503 and "error" in json.loads(body or b"{}")
        ready = [replica.ready() for replica in self.replicas]
        predict = request(self.front.port, "POST", "/predict", samples.DIGIT_PNG, "image/png")[0]
        started = time.monotonic()
        self.postgres.start()
        deadline = time.monotonic() + 60
        while True:
            again = request(self.front.port, "POST", "/feedback", samples.feedback_body(answer), "application/json")[0]
            if again == 201 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        recovered = time.monotonic() - started
        passed = down and all(ready) and predict == 200 and again == 201
        return passed, (f"store stopped: POST /feedback {status} (Retry-After {headers.get('Retry-After')}), "
                        f"replicas ready {ready}, /predict {predict}; store started again: POST /feedback {again} "
                        f"{recovered:.1f} s later")

    # 5. A rolling restart under load.
    def rolling_restart(self):
        self.load = Load("127.0.0.1", self.front.port, samples.LOAD_BODIES, clients=LOAD_CLIENTS).start()
        time.sleep(SETTLE_SECONDS)
        replaced = []
        for index, old in enumerate(list(self.replicas)):
            started = time.monotonic()
            new = self.new_replica()
            new.wait_until_started()
            ready_seconds = time.monotonic() - started
            # maxSurge 1, maxUnavailable 0: the new pod serves before the old one leaves.
            self.front.route_to([replica.port for replica in self.replicas] + [new.port])
            self.replicas[index] = new
            # Kubernetes takes a terminating pod out of the Service and runs its preStop hook at once, and the
            # proxies hear of it a moment later: so SIGTERM may come while requests still arrive.
            leaving = threading.Thread(target=self.leave_service, daemon=True)
            leaving.start()
            hook = old.pre_stop()
            stop_seconds, exit_code = old.stop()
            leaving.join()
            old.remove()
            replaced.append(f"{old.name} -> {new.name}: new ready in {ready_seconds:.1f} s, preStop {hook}, "
                            f"old stopped in {stop_seconds:.1f} s ({stopped_by(exit_code)})")
        time.sleep(SETTLE_SECONDS)
        self.load.stop()
        load = self.load
        rate = load.total / load.seconds
        outcomes = ", ".join(f"{outcome}: {count}" for outcome, count in sorted(load.outcomes.items()))
        failures = f"; first failures (s, path, outcome): {load.failures[:5]}" if load.failures else ""
        passed = load.failed == 0 and load.total > 0
        return passed, (f"**{load.failed} failed of {load.total} requests** ({outcomes}) from {LOAD_CLIENTS} clients "
                        f"over {load.seconds:.1f} s ({rate:.0f} req/s, /predict and /number in turn); "
                        + "; ".join(replaced) + failures)

    def leave_service(self):
        time.sleep(ENDPOINTS_LAG_SECONDS)
        self.front.route_to([replica.port for replica in self.replicas])

    def run(self):
        started = time.monotonic()
        self.cleanup()
        self.step("1. one container: read-only root, non-root, a volume for the store", self.single_container)
        try:
            if self.step("2. fleet: PostgreSQL, 3 replicas by `podman kube play`, nginx", self.start_fleet):
                self.step("3. through nginx: every route, one shared store", self.through_nginx)
                self.step("4. store outage: feedback 503, replicas stay ready", self.store_outage)
                self.step("5. rolling restart of every replica under load", self.rolling_restart)
        finally:
            if self.load and self.load.seconds is None:  # a step broke during the load
                self.load.stop()
            self.cleanup()
        self.total_seconds = time.monotonic() - started
        return all(passed for *_, passed in self.steps)

    def cleanup(self):
        if self.front:
            self.front.stop()
        for replica in self.replicas:
            replica.remove()
        leftovers = [name for name in podman("pod", "ps", "--format", "{{.Name}}", quiet=True, check=False).split()
                     if name.startswith(f"{PREFIX}-")]
        if leftovers:  # from an interrupted run
            podman("pod", "rm", "--force", *leftovers, quiet=True, check=False)
        for container in (f"{PREFIX}-single", f"{PREFIX}-single-2"):
            remove_container(container)
        if self.postgres:
            self.postgres.remove()
            self.postgres = None


def build_lines():
    """The latest cold and warm `make image` from build/image/builds.jsonl."""
    if not RECORDS.exists():
        return ["No build was recorded on this machine (build/image/builds.jsonl)."]
    records = [json.loads(line) for line in RECORDS.read_text().splitlines() if line.strip()]
    lines = ["| build | finished (UTC) | debootstrap base + import | wheels (pip download) | podman build | total | image |",
             "|---|---|---|---|---|---|---|"]
    for label, chosen in (("cold (no base image, no layer cache)", [r for r in records if r["cold"]]),
                          ("warm (base and layers cached)", [r for r in records if not r["cold"]])):
        if chosen:
            record = chosen[-1]
            base = "reused" if record["base_seconds"] is None else f"{record['base_seconds']} s"
            lines.append(f"| {label} | {record['finished']} | {base} | {record['wheels_seconds']} s | "
                         f"{record['build_seconds']} s | {record['total_seconds']} s | {record['size_mb']} MB |")
    return lines


def source_commit():
    """The checkout's commit, marked when it has uncommitted changes."""
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
    return f"{commit or 'unknown'}{' with uncommitted changes' if dirty.strip() else ''}"


def write_results(check, path):
    podman_version = podman("version", "--format", "{{.Client.Version}}", quiet=True, check=False).strip()
    verdict = "passed" if all(passed for *_, passed in check.steps) else "FAILED"
    lines = [
        "# `make check-image`: the image run as an operator would",
        "",
        f"Written by deploy/image/check_image.py on {datetime.now(timezone.utc).isoformat(timespec='seconds')} "
        f"from commit {source_commit()} (podman {podman_version}, {platform.machine()}, {shutil.os.cpu_count()} cores); "
        "do not edit by hand. "
        f"Every step {verdict}; the whole check took {check.total_seconds:.0f} s.",
        "",
        "## Steps",
        "",
        "| step | seconds | result | |",
        "|---|---|---|---|",
        *[f"| {name} | {seconds:.1f} | {result.replace('|', '/')} | {'pass' if passed else 'FAIL'} |"
          for name, seconds, result, passed in check.steps],
        "",
        "## What of deploy/k8s/deployment.yaml ran",
        "",
        "Each replica is `podman kube play --network host` of a one-replica copy of the Deployment. Applied by "
        "podman and read back above: the pod and container securityContext (user, group, read-only root, no "
        "capabilities, no privilege escalation, the default seccomp profile), the resource limits, the volumes "
        "(`/tmp`), the command, the environment and terminationGracePeriodSeconds (as `podman pod stop --time`). "
        "Scripted here, as podman 4.3 does not run them: the startup and readiness probes, the rolling update "
        "(maxSurge 1, maxUnavailable 0: a new pod is ready and in nginx before the old one leaves; the old one "
        f"leaves nginx {ENDPOINTS_LAG_SECONDS:.0f} s after its preStop hook began, as endpoints reach a cluster's "
        "proxies late), the preStop hook and the Service (nginx). Changed in the copy: replicas 1, the host's network (so no `ports`, "
        "probes by port number and a PORT per replica), an emptyDir volume per pod (podman 4.3 would share one "
        "between pods), and env for the shared store, the admin token and the raised per-client limits. "
        "Not exercised: the liveness probe (podman makes it a systemd-timed healthcheck; there is no systemd "
        "here), memory-backed emptyDir and its sizeLimit (podman gives a volume on disk), the HPA and the PDB.",
        "",
        "## Builds (`make image`)",
        "",
        *build_lines(),
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv=None):
    args = parse_args(argv)
    check = Check(args)
    passed = check.run()
    write_results(check, args.results)
    print(f"check-image: {'every step passed' if passed else 'FAILED'}; wrote {args.results}", file=sys.stderr)
    shutil.rmtree(check.work, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
