"""The image's recipe without building it (`make check-image` builds and runs it): pinned inputs and the kube play copy.

- constraints.txt pins every package of the serve extra at the version installed here, the one CI tests;
- the Containerfile's registry bases are pinned by digest;
- deploy/image/fleet.py's copy of the Deployment changes only what its docstring says it changes.
"""

import re
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT

IMAGE_DIR = ROOT / "deploy" / "image"
sys.path.insert(0, str(IMAGE_DIR))  # deploy/image/ is a folder of scripts, like deploy/arm/

from fleet import load_deployment, overlay  # noqa: E402


def pins():
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def test_constraints_match_the_installed_serve_packages():
    result = subprocess.run([sys.executable, str(IMAGE_DIR / "lock.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_serve_requirement_is_pinned_within_its_range():
    serve = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serve"]
    pinned = {normalize(name): version for name, version in pins().items()}
    for text in serve:
        requirement = Requirement(text)
        version = pinned.get(normalize(requirement.name))
        assert version, f"{requirement.name} is not in constraints.txt"
        assert requirement.specifier.contains(version), f"{requirement.name}=={version} is outside {requirement.specifier}"
    assert pinned["onnxruntime"] != "1.21.0"  # it dies with SIGILL on a Raspberry Pi 4


@pytest.mark.parametrize("argument", ["PYTHON_BASE", "NODE_BASE"])
def test_registry_bases_are_pinned_by_digest(argument):
    text = (ROOT / "deploy" / "Containerfile").read_text()
    (value,) = re.findall(rf"^ARG {argument}=(\S+)$", text, re.MULTILINE)
    assert re.fullmatch(r"docker\.io/library/[\w.:-]+@sha256:[0-9a-f]{64}", value), value


def test_kube_play_copy_keeps_the_pod_spec_and_changes_only_what_it_says():
    deployment = load_deployment()
    copied = overlay(deployment, "digit-kiosk-check-1", 18080, {"SERVE_ADMIN_TOKEN": "token"})
    original, played = deployment["spec"]["template"]["spec"], copied["spec"]["template"]["spec"]
    assert copied["spec"]["replicas"] == 1 and copied["metadata"]["name"] == "digit-kiosk-check-1"
    assert played["securityContext"] == original["securityContext"]
    (before,), (after,) = original["containers"], played["containers"]
    for field in ("image", "command", "resources", "securityContext", "lifecycle"):
        assert after.get(field) == before.get(field), field
    assert "ports" not in after
    environment = {item["name"]: item.get("value") for item in after["env"]}
    assert environment["PORT"] == "18080" and environment["SERVE_ADMIN_TOKEN"] == "token"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert after[probe]["httpGet"]["path"] == before[probe]["httpGet"]["path"]
        assert after[probe]["httpGet"]["port"] == 18080
    mounts = {mount["mountPath"]: mount["name"] for mount in after["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in played["volumes"]}
    assert mounts["/tmp"] == "digit-kiosk-check-1-tmp" and "emptyDir" in volumes[mounts["/tmp"]]
    assert len(played["volumes"]) == len(original["volumes"])
