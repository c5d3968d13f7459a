"""Raspberry Pi CPUs on an x86 machine: Debian's arm64 Python under qemu user-mode emulation.

- The root: Debian bookworm arm64 (Raspberry Pi OS is built on it, with the same Python 3.11), fetched
  by `debootstrap --foreign` and unpacked with `dpkg-deb -x`. Nothing runs inside it but python3.11, so
  debootstrap's second stage (which would need binfmt_misc) is never needed.
- The packages: the real aarch64 wheels from PyPI, installed by the host's pip into one folder per
  onnxruntime version, the other serving packages pinned to the host's versions.
- The CPU: `qemu-aarch64-static -cpu cortex-a72 -L ROOT ROOT/usr/bin/python3.11`, called explicitly.

The /proc/cpuinfo trap: user-mode qemu emulates the CPU but not /proc, so the guest reads the host's
x86 /proc/cpuinfo. onnxruntime >= 1.28 parses it at import and dies with a segmentation fault, which
a real Pi never does. So every guest runs in a private mount namespace (`unshare --mount`, root only)
where a Pi's own /proc/cpuinfo for the emulated core is bind-mounted over the host's. A segfault at
import without that mount is the emulator's artefact, not a Pi failure.

Everything downloaded is kept under the cache folder, so a second run starts at once.
"""

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SUITE = "bookworm"
PYTHON = "usr/bin/python3.11"
PYTHON_VERSION = "3.11"
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")


def serving_requirements(onnxruntime_version):
    """pyproject's `serve` extra, each pinned to the host's version so only the CPU differs; onnxruntime as asked."""
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serve"]
    pinned = [f"onnxruntime=={onnxruntime_version}"]
    for requirement in map(Requirement, extra):
        if requirement.name != "onnxruntime":
            extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
            pinned.append(f"{requirement.name}{extras}=={version(requirement.name)}")
    return pinned


@dataclass(frozen=True)
class Cpu:
    qemu_name: str
    name: str
    boards: str
    cpuinfo_features: str
    cpuinfo_ids: str  # variant, part and revision as the Pi's kernel reports them
    board_model: str


BASE_FEATURES = "fp asimd evtstrm crc32 cpuid"
CPUS = [
    Cpu("cortex-a72", "Cortex-A72", "Pi 4, Pi 400, CM4", BASE_FEATURES, "0x0 0xd08 3", "Raspberry Pi 4 Model B Rev 1.4"),
    Cpu("cortex-a53", "Cortex-A53", "Pi 3, Zero 2 W", BASE_FEATURES, "0x0 0xd03 4", "Raspberry Pi 3 Model B Rev 1.2"),
    Cpu("cortex-a76", "Cortex-A76", "Pi 5", BASE_FEATURES.replace("crc32", "aes pmull sha1 sha2 crc32 atomics fphp asimdhp")
        + " asimdrdm lrcpc dcpop asimddp", "0x4 0xd0b 1", "Raspberry Pi 5 Model B Rev 1.0"),
]


def cpuinfo_text(cpu, cores=4):
    """/proc/cpuinfo as Raspberry Pi OS 64-bit shows it on this board."""
    variant, part, revision = cpu.cpuinfo_ids.split()
    core = ("BogoMIPS\t: 108.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
            "CPU variant\t: {variant}\nCPU part\t: {part}\nCPU revision\t: {revision}\n")
    blocks = [f"processor\t: {index}\n" + core.format(features=cpu.cpuinfo_features, variant=variant, part=part,
                                                       revision=revision) for index in range(cores)]
    return "\n".join(blocks) + f"\nModel\t\t: {cpu.board_model}\n"


def run(command, **options):
    """Run a host command, showing it; a failure stops the check with the command's own output."""
    print("+", " ".join(str(part) for part in command), file=sys.stderr, flush=True)
    return subprocess.run([str(part) for part in command], check=True, **options)


class Emulator:
    """The cached arm64 root, wheel folders and cpuinfo files, and the command that runs a guest."""

    def __init__(self, cache, mirror):
        self.cache = Path(cache).resolve()
        self.root = self.cache / "root"
        self.mirror = mirror

    def prepare_root(self):
        """Debian arm64 with python3.11, unpacked once (the .deb files stay in its apt cache)."""
        stamp = self.root / ".unpacked"
        if stamp.exists():
            return
        if self.root.exists():
            shutil.rmtree(self.root)  # a run interrupted half-way
        run(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase", "--include=python3.11", SUITE,
             self.root, self.mirror], stdout=subprocess.DEVNULL)
        for deb in sorted((self.root / "var/cache/apt/archives").glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(self.root)], check=True)
        assert (self.root / PYTHON).exists(), f"debootstrap gave no {PYTHON}"
        stamp.touch()

    def prepare_wheels(self, onnxruntime_version):
        """A folder of aarch64 wheels for this onnxruntime version; its path goes on PYTHONPATH."""
        requirements = serving_requirements(onnxruntime_version)
        key = hashlib.sha256(" ".join(requirements).encode()).hexdigest()[:8]
        folder = self.cache / "wheels" / f"onnxruntime-{onnxruntime_version}-{key}"
        stamp = folder / ".installed"
        if stamp.exists():
            return folder
        if folder.exists():
            shutil.rmtree(folder)
        platforms = [argument for platform in PLATFORMS for argument in ("--platform", platform)]
        run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--root-user-action=ignore",
             "--target", folder, *platforms, "--only-binary=:all:", "--python-version", PYTHON_VERSION, *requirements])
        (folder / "requirements.txt").write_text("\n".join(requirements) + "\n")
        stamp.touch()
        return folder

    def cpuinfo_file(self, cpu):
        path = self.cache / "cpuinfo" / cpu.qemu_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(cpuinfo_text(cpu))
        return path

    def python_command(self, cpu, *arguments):
        """argv running the guest's python3.11 on `cpu` with this board's /proc/cpuinfo (see the module doc)."""
        mount_then_run = 'mount --bind "$0" /proc/cpuinfo && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount_then_run, str(self.cpuinfo_file(cpu)),
                "qemu-aarch64-static", "-cpu", cpu.qemu_name, "-L", str(self.root), str(self.root / PYTHON), *arguments]

    def environment(self, wheels, checkout):
        """The guest's environment: the wheels and the checkout importable, nothing from the host's Python."""
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": f"{wheels}:{checkout}", "PYTHONNOUSERSITE": "1",
                "LANG": "C.UTF-8", "MALLOC_ARENA_MAX": "2"}
