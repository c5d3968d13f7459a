"""`make check-arm`: the serving code on emulated Raspberry Pi CPUs, compared with this x86 machine.

    python deploy/arm/check_arm.py [--digits N] [--cache DIR]      # as root (unshare, debootstrap)

For each of Cortex-A72 (Pi 4), A53 (Pi 3, Zero 2 W) and A76 (Pi 5), with the aarch64 wheels of the
onnxruntime this machine serves with:
- `python -m serve.predict --json` on N synthetic digits, fp32 and int8 (every variant in the
  manifest), must give the same digit as on x86 for every image and probabilities within 1e-5
  (int8 within 1e-2 and the same verdict, see TOLERANCE);
- `python -m serve` started under emulation must answer `/` and `/predict` from the host.
Negative control: onnxruntime 1.21.0 on Cortex-A72 must die with SIGILL ("Illegal instruction",
onnxruntime issue #23957, what Pi 4 users hit); if it does not, this check cannot catch that class of
bug, and it fails. Prints a table CPU x onnxruntime x result; exits 1 unless every row passes.
How the emulation works, and the /proc/cpuinfo trap, is in emulator.py.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

from digits import write_digits
from emulator import CPUS, Emulator

ROOT = Path(__file__).resolve().parents[2]
MAX_PROBABILITY_DIFFERENCE = 1e-5
# onnxruntime's int8 kernels requantize differently on x86 and ARM, so now and then a hidden activation
# lands one quantization step apart and the probabilities move with it. Measured on 200 digits with the
# logits kept float (convert/quantize.py): 2 digits moved, by 3e-5 and 6.2e-3, the other 198 by under 1e-5.
# The digit and the verdict must still agree on every image.
TOLERANCE = {"int8": 1e-2}
CONTROL_VERSION = "1.21.0"
CONTROL_CPU = "cortex-a72"
ADDRESS_LINE = r" on (http://[\d.]+:\d+)"  # python -m serve's start-up line
SERVER_START_SECONDS = 180  # importing Flask and onnxruntime under emulation, on a busy 2-core machine


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="check_arm.py", description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=200, help="synthetic digits compared per CPU and variant")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "arm",
                        help="downloads and the arm64 root (default %(default)s)")
    parser.add_argument("--mirror", default=os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian"),
                        help="Debian mirror for debootstrap (env DEBIAN_MIRROR)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="emulated processes at once")
    return parser.parse_args(argv)


def predict_arguments(variant, paths):
    return ["-m", "serve.predict", "--json", "--variant", variant, *map(str, paths)]


def read_answers(stdout):
    """serve.predict --json lines -> {file name: answer}."""
    answers = {}
    for line in stdout.splitlines():
        answer = json.loads(line)
        answers[Path(answer.pop("file")).name] = answer
    return answers


def compare(reference, answers):
    """(digits answered differently (digit or verdict), digits whose probabilities differ by over 1e-5, the largest difference)."""
    differing, beyond, largest = 0, 0, 0.0
    for name, expected in reference.items():
        got = answers[name]
        if "error" in expected or "error" in got:
            differing += expected != got
            continue
        differing += (got["digit"], got.get("verdict")) != (expected["digit"], expected.get("verdict"))
        difference = max(abs(a - b) for a, b in zip(got["probabilities"], expected["probabilities"]))
        beyond += difference > MAX_PROBABILITY_DIFFERENCE
        largest = max(largest, difference)
    return differing, beyond, largest


def crash_reason(returncode, stderr):
    """What killed a guest, in a Pi user's words, from its exit status and qemu's last message."""
    signals = {signal.SIGILL: "SIGILL (Illegal instruction)", signal.SIGSEGV: "SIGSEGV (Segmentation fault)"}
    for number, text in signals.items():
        if returncode in (-number, 128 + number):
            return text
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return f"exit status {returncode}: {last[:160]}"


class Check:
    """The runs, their results as table rows, and whether every row passed."""

    def __init__(self, args):
        self.args = args
        self.emulator = Emulator(args.cache, args.mirror)
        self.work = self.emulator.cache / "work"
        self.manifest = json.loads((ROOT / "artifacts" / "manifest.json").read_text())
        self.variants = list(self.manifest["variants"])
        self.version = version("onnxruntime")
        self.rows = []
        self.lock = threading.Lock()

    def add_row(self, cpu, runtime, what, result, passed):
        with self.lock:
            self.rows.append((cpu, runtime, what, result, "pass" if passed else "FAIL"))
        print(f"{'pass' if passed else 'FAIL'}: {cpu} onnxruntime {runtime} {what}: {result}", file=sys.stderr, flush=True)

    def guest(self, cpu, wheels, *arguments):
        return self.emulator.python_command(cpu, *arguments), self.emulator.environment(wheels, ROOT)

    def compare_digits(self, cpu, wheels, variant):
        command, environment = self.guest(cpu, wheels, *predict_arguments(variant, self.paths))
        started = time.perf_counter()
        result = subprocess.run(command, env=environment, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        what = f"{variant}, {len(self.paths)} digits"
        (self.work / f"{cpu.qemu_name}-{self.version}-{variant}.jsonl").write_text(result.stdout)
        if result.returncode != 0:
            return self.add_row(cpu.name, self.version, what, crash_reason(result.returncode, result.stderr), False)
        differing, beyond, largest = compare(self.reference[variant], read_answers(result.stdout))
        passed = differing == 0 and largest <= TOLERANCE.get(variant, MAX_PROBABILITY_DIFFERENCE)
        self.add_row(cpu.name, self.version, what,
                     f"same digit as x86: {len(self.paths) - differing}/{len(self.paths)}; max \\|Δp\\| {largest:.1e}, "
                     f"{beyond} over 1e-5 ({seconds:.0f} s)", passed)

    def check_server(self, cpu, wheels):
        """Start `python -m serve` under emulation; the host asks for `/` and `/predict`."""
        # One process, as the Pi's unit runs it: a supervisor would start its workers with the guest's python
        # directly, outside qemu.
        command, environment = self.guest(cpu, wheels, "-m", "serve", "--workers", "1", "--port", "0", "--quiet")
        server = subprocess.Popen(command, env=environment, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        started = time.perf_counter()
        try:
            url, log = wait_for_address(server)
            if url is None:
                server.kill()
                return self.add_row(cpu.name, self.version, "python -m serve", crash_reason(server.wait(), log), False)
            seconds = time.perf_counter() - started
            self.ask_server(cpu, url, seconds)
        except OSError as error:  # the server died or stopped answering half-way
            self.add_row(cpu.name, self.version, "python -m serve", f"no answer: {error}", False)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    def ask_server(self, cpu, url, seconds):
        """GET / and POST /predict with one digit; the answer must be x86's."""
        with urllib.request.urlopen(url + "/", timeout=60) as response:
            page_ok = response.status == 200 and response.headers.get_content_type() == "text/html"
        sample = self.paths[0]
        request = urllib.request.Request(url + "/predict", data=sample.read_bytes(), headers={"Content-Type": "image/png"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        expected = self.reference[self.manifest["default_variant"]][sample.name]
        differing, _, largest = compare({sample.name: expected}, {sample.name: answer})
        passed = page_ok and differing == 0 and largest <= MAX_PROBABILITY_DIFFERENCE
        self.add_row(cpu.name, self.version, "python -m serve",
                     f"up in {seconds:.0f} s; `/` {'200 text/html' if page_ok else 'WRONG'}; "
                     f"`/predict` digit {answer['digit']} as on x86, max \\|Δp\\| {largest:.1e}", passed)

    def run_control(self, cpu, wheels):
        """onnxruntime 1.21.0 on a Pi 4 core must crash with SIGILL; anything else fails the check."""
        command, environment = self.guest(cpu, wheels, *predict_arguments(self.variants[0], self.paths[:10]))
        result = subprocess.run(command, env=environment, cwd=ROOT, capture_output=True, text=True)
        reason = crash_reason(result.returncode, result.stderr) if result.returncode else "ran without crashing"
        self.add_row(cpu.name, f"{CONTROL_VERSION} (control)", "python -m serve.predict",
                     f"{reason}; expected SIGILL", reason.startswith("SIGILL"))

    def run(self):
        started = time.perf_counter()
        self.emulator.prepare_root()
        wheels = self.emulator.prepare_wheels(self.version)
        control_wheels = self.emulator.prepare_wheels(CONTROL_VERSION)
        print(f"check-arm: prepared in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

        self.paths = write_digits(self.work / "digits", self.args.digits)
        self.reference = {}
        for variant in self.variants:
            result = subprocess.run([sys.executable, *predict_arguments(variant, self.paths)], cwd=ROOT,
                                    capture_output=True, text=True, check=True)
            self.reference[variant] = read_answers(result.stdout)
            self.add_row("x86-64 (this machine)", self.version, f"{variant}, {len(self.paths)} digits",
                         "reference", True)

        control_cpu = next(cpu for cpu in CPUS if cpu.qemu_name == CONTROL_CPU)
        # Longest first (fp32 under emulation), so the last job to start is a short one.
        jobs = [(self.compare_digits, cpu, wheels, variant) for variant in self.variants for cpu in CPUS]
        jobs += [(self.check_server, cpu, wheels) for cpu in CPUS]
        jobs.append((self.run_control, control_cpu, control_wheels))
        with ThreadPoolExecutor(self.args.jobs) as pool:
            for future in [pool.submit(*job) for job in jobs]:
                future.result()

        order = {cpu.name: index for index, cpu in enumerate(CPUS)}
        rows = sorted(self.rows, key=lambda row: (order.get(row[0], -1), "control" in row[1], row[2]))
        print(markdown_table(["CPU", "onnxruntime", "run", "result", "verdict"], rows))
        print(f"\ncheck-arm: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return all(row[-1] == "pass" for row in rows)


def wait_for_address(server):
    """The server's URL from its start-up line on stderr (None if it exits or takes too long), and its log."""
    log, found = [], threading.Event()

    def read_stderr():  # until the server exits, so it never blocks on a full pipe
        for line in server.stderr:
            log.append(line)
            if re.search(ADDRESS_LINE, line):
                found.set()

    threading.Thread(target=read_stderr, daemon=True).start()
    deadline = time.monotonic() + SERVER_START_SECONDS
    while not found.wait(0.2) and server.poll() is None and time.monotonic() < deadline:
        pass
    time.sleep(0.2)  # the reader's last lines, when it exited
    text = "".join(log)
    address = re.search(ADDRESS_LINE, text)
    return (address.group(1) if address and server.poll() is None else None), text


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("check_arm.py: run as root (debootstrap and the private /proc/cpuinfo mount need it)", file=sys.stderr)
        return 2
    return 0 if Check(args).run() else 1


if __name__ == "__main__":
    sys.exit(main())
