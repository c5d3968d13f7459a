"""Replicas of deploy/k8s/deployment.yaml run by `podman kube play`, and nginx in front of them.

Debian's podman 4.3 runs a Deployment's pod spec (user, read-only root, capabilities, seccomp, limits,
volumes) but not the rest of what a cluster does: it ignores readiness and startup probes and preStop hooks,
turns the liveness probe into a healthcheck that needs systemd (absent here), and starts every replica at once
on the same port. So each replica here is its own one-replica copy of the Deployment, and this module plays
the cluster's part: it runs the probes, adds a ready pod to nginx, takes a pod out of nginx before stopping
it, runs its preStop hook, and stops it with SIGTERM and the pod's grace period.

What the copy changes, and why (`overlay`):
- replicas 1 and a name per replica: the rollout is scripted here;
- the host's network, so PORT differs per replica, `ports` is dropped and the probes name the port by number:
  podman's bridge would need addresses outside loopback;
- each emptyDir volume gets the pod's name: podman 4.3 shares a named volume between pods, Kubernetes never;
- env added for the check (the shared store, the admin token, raised per-client limits).
"""

import copy
import dataclasses
import http.client
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from podman import container_state, podman

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = ROOT / "deploy" / "k8s" / "deployment.yaml"
FALLBACK_READINESS = "/healthz"


def load_deployment(path=DEPLOYMENT):
    documents = [document for document in yaml.safe_load_all(Path(path).read_text()) if document]
    (deployment,) = [document for document in documents if document.get("kind") == "Deployment"]
    return deployment


def overlay(deployment, name, port, env):
    """The Deployment as one replica `name` on the host's network at `port`, with `env` added (see module doc)."""
    copied = copy.deepcopy(deployment)
    copied["metadata"]["name"] = name
    copied["spec"]["replicas"] = 1
    pod = copied["spec"]["template"]["spec"]
    renamed = {}
    for volume in pod.get("volumes", []):
        if "emptyDir" in volume:
            renamed[volume["name"]] = volume["name"] = f"{name}-{volume['name']}"
    for container in pod["containers"]:
        container.pop("ports", None)
        values = {**{item["name"]: item for item in container.get("env", [])},
                  **{key: {"name": key, "value": str(value)} for key, value in {**env, "PORT": port}.items()}}
        container["env"] = list(values.values())
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if "httpGet" in container.get(probe, {}):
                container[probe]["httpGet"]["port"] = port
        for mount in container.get("volumeMounts", []):
            mount["name"] = renamed.get(mount["name"], mount["name"])
    return copied


def http_get(port, path, timeout=2.0):
    """The status of GET path on 127.0.0.1:port, or None when nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


class Replica:
    """One pod of the Deployment, played by podman, with the cluster's probes and stop scripted."""

    def __init__(self, deployment, name, port, env, work_dir):
        self.name, self.port = name, port
        self.spec = overlay(deployment, name, port, env)
        pod = self.spec["spec"]["template"]["spec"]
        self.container_spec = pod["containers"][0]
        self.grace = int(pod.get("terminationGracePeriodSeconds", 30))
        self.pod = f"{name}-pod-0"  # podman 4.3 names a Deployment's pods NAME-pod-INDEX
        self.container = f"{self.pod}-{self.container_spec['name']}"
        self.volumes = [volume["name"] for volume in pod.get("volumes", []) if "emptyDir" in volume]
        self.file = Path(work_dir) / f"{name}.yaml"
        self.file.write_text(yaml.safe_dump(self.spec, sort_keys=False))
        self.readiness_path = self.probe_path("readinessProbe")

    def probe_path(self, probe):
        return self.container_spec.get(probe, {}).get("httpGet", {}).get("path", FALLBACK_READINESS)

    def play(self):
        podman("kube", "play", "--network", "host", self.file, quiet=True)
        return self

    def wait_until_started(self):
        """The startup probe, then the readiness probe, as the kubelet runs them (faster polling, same bound)."""
        startup = self.container_spec.get("startupProbe", {})
        bound = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
        deadline = time.monotonic() + bound
        for path in (self.probe_path("startupProbe"), self.readiness_path):
            while True:
                status = http_get(self.port, path)
                if status == 200:
                    break
                if status == 404 and path == self.readiness_path != FALLBACK_READINESS:
                    # A server without /readyz: readiness falls back to /healthz.
                    print(f"fleet: {self.name}: {path} is 404, readiness uses {FALLBACK_READINESS}", file=sys.stderr)
                    self.readiness_path = path = FALLBACK_READINESS
                    continue
                state = container_state(self.container)
                if state and state.get("Status") == "exited":
                    logs = podman("logs", "--tail", "20", self.container, quiet=True, check=False)
                    raise RuntimeError(f"{self.container} exited with status {state.get('ExitCode')}: {logs}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: {path} did not answer 200 within {bound} s")
                time.sleep(0.2)
        return self

    def ready(self):
        return http_get(self.port, self.readiness_path) == 200

    def pre_stop(self):
        """The container's preStop hook, if the spec has one (exec, httpGet or sleep); returns what ran."""
        hook = self.container_spec.get("lifecycle", {}).get("preStop")
        if not hook:
            return "none"
        if "exec" in hook:
            podman("exec", self.container, *hook["exec"]["command"], quiet=True)
            return "exec " + " ".join(hook["exec"]["command"])
        if "httpGet" in hook:
            http_get(self.port, hook["httpGet"]["path"], timeout=self.grace)
            return f"GET {hook['httpGet']['path']}"
        if "sleep" in hook:
            time.sleep(int(hook["sleep"]["seconds"]))
            return f"sleep {hook['sleep']['seconds']} s"
        return f"unknown hook {sorted(hook)}"

    def stop(self):
        """SIGTERM, SIGKILL after the grace period; returns (seconds, the server's exit status)."""
        started = time.monotonic()
        podman("pod", "stop", "--time", self.grace, self.pod, quiet=True)
        seconds = time.monotonic() - started
        state = container_state(self.container) or {}
        return seconds, state.get("ExitCode")

    def remove(self):
        podman("pod", "rm", "--force", "--ignore", self.pod, quiet=True, check=False)
        for volume in self.volumes:
            podman("volume", "rm", "--force", volume, quiet=True, check=False)

    def inspect(self):
        """What podman actually applied from the pod spec, for the report."""
        template = ("{{.Config.User}}|{{.HostConfig.ReadonlyRootfs}}|{{.HostConfig.Memory}}|{{.HostConfig.CpuQuota}}|"
                    "{{.HostConfig.CpuPeriod}}|{{.EffectiveCaps}}|{{.HostConfig.SecurityOpt}}|"
                    "{{range .Mounts}}{{.Destination}} {{end}}")
        user, read_only, memory, quota, period, capabilities, security, mounts = \
            podman("inspect", "--format", template, self.container, quiet=True).strip().split("|")
        status = podman("exec", self.container, "sh", "-c", "grep -E '^(NoNewPrivs|Seccomp):' /proc/1/status; "
                        "id -u; touch /probe-write 2>&1 || true", quiet=True)
        return {"user": user, "read_only_root": read_only == "true", "memory_limit_mib": int(memory) // 2**20,
                "cpu_limit": int(quota) / int(period) if int(period) else None, "capabilities": capabilities,
                "security_options": security, "mounts": mounts.split(), "process_status": status.strip()}


class Front:
    """nginx rendered by serve/front.py, in front of the replicas' addresses; reloaded as they change."""

    def __init__(self, port, run_dir, per_client_rate, per_client_connections):
        """Every per-address limit the front has (rates, bursts: any field so named) raised for one load client."""
        from serve.front import FrontConfig, Nginx

        raised = {field.name: per_client_rate for field in dataclasses.fields(FrontConfig)
                  if re.search(r"(rate|burst)(_per_minute)?$", field.name)}
        self.config = FrontConfig(listen=f"127.0.0.1:{port}", upstreams=[], connections_per_address=per_client_connections,
                                  worker_processes="2", **raised)
        self.nginx_class = Nginx
        self.run_dir = run_dir
        self.nginx = None
        self.port = port

    def route_to(self, ports):
        """Send new requests to these replicas; returns once nginx's old workers have finished theirs."""
        self.config.upstreams = [f"127.0.0.1:{port}" for port in ports]
        if self.nginx is None:
            self.nginx = self.nginx_class(self.config, self.run_dir).start()
            return
        old_workers = self.workers()
        self.nginx.reload(self.config)
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in old_workers) and time.monotonic() < deadline:
            time.sleep(0.05)

    def workers(self):
        result = subprocess.run(["ps", "--ppid", str(self.nginx.process.pid), "-o", "pid="], capture_output=True, text=True)
        return [int(pid) for pid in result.stdout.split()]

    def stop(self):
        if self.nginx:
            self.nginx.stop()
