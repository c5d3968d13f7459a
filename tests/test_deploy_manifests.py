"""deploy/k8s/ validates against the Kubernetes schemas (kubernetes-validate) and deploy/Containerfile passes hadolint.

No image is built or pulled here; these check the files, and that the checkers do catch a broken one.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

K8S_DIR = ROOT / "deploy" / "k8s"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
MANIFESTS = sorted(K8S_DIR.glob("*.yaml"))
BIN = Path(sys.executable).parent


def tool(name):
    """A checker installed with the test extra, next to this Python or on PATH."""
    found = shutil.which(name, path=f"{BIN}:{shutil.os.environ.get('PATH', '')}")
    assert found, f"{name} is missing: `make setup` installs the test extra"
    return found


def kubernetes_validate(*paths):
    return subprocess.run([tool("kubernetes-validate"), "--strict", "--no-warn", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def hadolint(path):
    return subprocess.run([tool("hadolint"), "--no-color", str(path)], capture_output=True, text=True, timeout=60)


def resources():
    return {document["kind"]: document for path in MANIFESTS for document in yaml.safe_load_all(path.read_text())}


@pytest.mark.parametrize("path", MANIFESTS, ids=[path.name for path in MANIFESTS])
def test_manifest_validates_strictly(path):
    result = kubernetes_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_validate_rejects_a_broken_manifest(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text((K8S_DIR / "deployment.yaml").read_text().replace("replicas: 2", "replicas: two"))
    assert kubernetes_validate(broken).returncode != 0


def test_every_kind_the_cluster_needs_is_there():
    assert set(resources()) == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}


def test_pods_are_locked_down_and_probed():
    pod = resources()["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"] and "add" not in security["capabilities"]
    # Readiness turns false while a pod drains; liveness must not, or the kubelet would kill it mid-drain.
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz", probe
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind


def test_the_grace_period_covers_the_prestop_wait_and_the_drain():
    from serve.drain import drain_settings

    pod = resources()["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    delay, timeout = drain_settings({item["name"]: item["value"] for item in container["env"] if "value" in item})
    assert pod["terminationGracePeriodSeconds"] >= float(command[1]) + delay + timeout + 5


def test_service_hpa_and_budget_point_at_the_deployment():
    found = resources()
    deployment = found["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert found["Service"]["spec"]["selector"].items() <= labels.items()
    assert found["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = found["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    (metric,) = found["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # The budget must leave a replica to evict, or a node drain would hang.
    assert found["PodDisruptionBudget"]["spec"]["minAvailable"] < found["HorizontalPodAutoscaler"]["spec"]["minReplicas"]


def test_containerfile_passes_hadolint():
    result = hadolint(CONTAINERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_careless_containerfile(tmp_path):
    careless = tmp_path / "Containerfile"
    careless.write_text("FROM python:latest\nRUN apt-get install curl\n")
    result = hadolint(careless)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_image_runs_as_a_non_root_user_with_a_healthcheck_on_the_probed_port():
    text = CONTAINERFILE.read_text()
    (user,) = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user.split(":")[0] not in ("0", "root")
    container = resources()["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert str(resources()["Deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"]) == user.split(":")[0]
    port = container["ports"][0]["containerPort"]
    assert re.search(r"HEALTHCHECK .*\n.*http://127\.0\.0\.1:\{os\.environ\['PORT'\]\}/healthz", text)
    assert f"PORT={port}" in text  # the image's default port is the one the Deployment probes


def test_the_feedback_store_has_a_writable_volume_under_the_read_only_root():
    pod = resources()["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {variable["name"]: variable for variable in container["env"]}
    store_dir = str(Path(env["SERVE_FEEDBACK_DB"]["value"]).parent)
    [mount] = [mount for mount in container["volumeMounts"] if mount["mountPath"] == store_dir]
    assert not mount.get("readOnly", False)
    assert any(volume["name"] == mount["name"] for volume in pod["volumes"])
    # A fleet's PostgreSQL, when its Secret exists; the pod starts without it.
    secret = env["SERVE_FEEDBACK_URL"]["valueFrom"]["secretKeyRef"]
    assert secret["optional"] is True
