"""Footprint: start-up time and resident memory of the serving process vs TensorFlow; install and model sizes.

    python -m bench.footprint [--quick]

Every process is started fresh, alternating between the contenders, several rounds; medians reported.
Installed sizes add up the files pip recorded for each package an extra pulls in (this virtualenv).
"""

import json
import os
import subprocess
import sys
import tomllib
from importlib import metadata

from bench import large_images
from bench.load import build_request, run_load
from bench.measure import median, ratio
from bench.models import (PAD_SIDE, keras_reference_path, load_manifest, mnist_test, pad_image, png_bytes, reader_path,
                          tflite_classifier)
from bench.report import ROOT, Section, Target, format_bytes, format_megabytes, format_ratio, format_seconds, run_section, script_command, table
from bench.servers import our_server, peer_server

RESIDENT_TARGET = 80e6       # bytes, the serving process (issue 3)
FIRST_ANSWER_TARGET = 1.0    # seconds from start to first answer (issue 3)
SOAK_REQUESTS = 10_000       # "flat after 10,000 requests" (issue 3)


def cold_start(runtime, path):
    """Spawn `python -m bench.cold_start` once; its JSON plus the whole process's wall time."""
    import time

    arguments = ["-m", "bench.cold_start", runtime, str(path), *([str(PAD_SIDE)] if runtime == "onnx" else [])]
    started = time.perf_counter()
    result = subprocess.run([sys.executable, *arguments], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"python {' '.join(arguments)} failed: {result.stderr[-800:]}")
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "wall_seconds": wall}, "python " + " ".join(
        [*arguments[:3], str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path), *arguments[4:]])


def requirement_closure(requirements, extras=()):
    """Installed distributions reached from `requirements` (markers evaluated for this machine)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen, missing = {}, set()
    pending = [(Requirement(text), extra) for text in requirements for extra in (extras or ("",))]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if name in seen or name == "digit-kiosk":
            continue
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            missing.add(name)
            continue
        seen[name] = distribution
        for text in distribution.requires or []:
            for wanted in (requirement.extras or {""}):
                pending.append((Requirement(text), wanted))
    return seen, missing


def installed_bytes(distribution):
    total = 0
    for file in distribution.files or []:
        try:
            total += distribution.locate_file(file).stat().st_size
        except OSError:
            pass
    return total


def extra_sizes():
    """extra -> (total bytes, [(package, bytes)] largest first, missing packages)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    sizes = {}
    for extra in ("serve", "train"):
        distributions, missing = requirement_closure(extras[extra])
        packages = sorted(((name, installed_bytes(distribution)) for name, distribution in distributions.items()),
                          key=lambda item: -item[1])
        sizes[extra] = (sum(size for _, size in packages), packages, sorted(missing))
    return sizes


def measure(args):
    manifest = load_manifest(args.artifacts)
    rounds = 1 if args.quick else 3
    soak_requests = 300 if args.quick else SOAK_REQUESTS
    fp32_path = reader_path(args.artifacts, manifest, manifest["default_variant"])
    keras_path = keras_reference_path(args.artifacts, manifest)
    tflite_path = tflite_classifier(keras_path, args.work_dir)
    images, labels = mnist_test(1)
    body = png_bytes(pad_image(images[0]))

    processes = {"onnxruntime + fp32 reader": ("onnx", fp32_path), "TensorFlow + Keras classifier": ("keras", keras_path),
                 "LiteRT + TFLite classifier": ("tflite", tflite_path)}
    cold, commands = {name: [] for name in processes}, {}
    servers = {"ours": [], "peer": []}
    server_commands = {}
    memory_after_load = None
    for round_index in range(rounds):
        for name, (runtime, path) in processes.items():
            figures, commands[name] = cold_start(runtime, path)
            cold[name].append(figures)
        for key, factory in (("ours", our_server), ("peer", peer_server)):
            with factory(args.work_dir, args.artifacts).start(body) as server:
                resident, peak = server.memory()
                servers[key].append({"first_answer_seconds": server.first_answer_seconds, "resident_bytes": resident, "peak_bytes": peak})
                server_commands[key] = (server.name, server.command)
                if key == "ours" and round_index == rounds - 1:
                    # Then the same server under load, to see whether memory stays where it started.
                    request = build_request(server.port, body, "image/png")
                    served = 0
                    while served < soak_requests:
                        served += run_load(server.port, [request], [int(labels[0])], concurrency=4, duration=1.0).completed
                    memory_after_load = (served, *server.memory())

    cold_rows = []
    for name, runs in cold.items():
        pick = lambda key: median([run[key] for run in runs])
        cold_rows.append([name, f"`{commands[name]}`", format_seconds(pick("import_seconds")), format_seconds(pick("load_seconds")),
                          format_seconds(pick("first_answer_seconds")), format_seconds(pick("wall_seconds")),
                          format_megabytes(pick("resident_bytes"))])
    server_rows, server_figures = [], {}
    for key, runs in servers.items():
        figures = {field: median([run[field] for run in runs]) for field in runs[0]}
        server_figures[key] = figures
        name, command = server_commands[key]
        server_rows.append([name, f"`{command}`", format_seconds(figures["first_answer_seconds"]),
                            format_megabytes(figures["resident_bytes"]), format_megabytes(figures["peak_bytes"])])
    ours, peer = server_figures["ours"], server_figures["peer"]
    bare_onnx_resident = median([run["resident_bytes"] for run in cold["onnxruntime + fp32 reader"]])
    served, resident_after, peak_after = memory_after_load

    sizes = extra_sizes()
    size_rows = []
    for extra, (total, packages, missing) in sizes.items():
        largest = ", ".join(f"{name} {format_megabytes(size)}" for name, size in packages[:4])
        note = f"; not installed here: {', '.join(missing)}" if missing else ""
        size_rows.append([f"`pip install .[{extra}]`", len(packages), format_megabytes(total), largest + note])
    size_ratio = ratio(sizes["train"][0], sizes["serve"][0])

    file_rows = [[f"{variant} reader (normalisation + CNN)", f"`{entry['file']}`", f"{entry['bytes']:,}"]
                 for variant, entry in manifest["variants"].items()]
    for name, entry in manifest.get("references", {}).items():
        file_rows.append([f"{name} classifier (reference, never served)", f"`{entry['file']}`", f"{entry['bytes']:,}"])
    file_rows.append(["TFLite classifier (converted here, for the bench)", f"`bench/out/{tflite_path.name}`", f"{tflite_path.stat().st_size:,}"])

    large_inputs, large_single, (parallel_idle, parallel_peak) = large_images.measure(artifacts_dir=args.artifacts)
    large_rows = [[name, format_bytes(len(body)), format_megabytes(large_single[name][0]), format_megabytes(large_single[name][1]),
                   format_megabytes(large_single[name][1] - large_single[name][0])] for name, body, _ in large_inputs]
    worst_name = max(large_single, key=lambda name: large_single[name][1] - large_single[name][0])
    worst_above_idle = large_single[worst_name][1] - large_single[worst_name][0]

    targets = [
        Target("worst-case request: peak resident above idle", f"≤ {format_megabytes(large_images.PER_REQUEST_BYTES)}",
               f"{format_megabytes(worst_above_idle)} ({worst_name})", worst_above_idle <= large_images.PER_REQUEST_BYTES),
        Target(f"{large_images.PARALLEL} worst-case requests at once: server peak resident",
               f"≤ {format_megabytes(large_images.PARALLEL_RESIDENT_BYTES)}",
               f"{format_megabytes(parallel_peak)} (idle {format_megabytes(parallel_idle)})",
               parallel_peak <= large_images.PARALLEL_RESIDENT_BYTES, large_inputs[0][0]),
        Target("serving process resident memory", f"≤ {format_megabytes(RESIDENT_TARGET)}",
               f"{format_megabytes(ours['resident_bytes'])} after the first answer, {format_megabytes(resident_after)} after {served:,} requests",
               max(ours["resident_bytes"], resident_after) <= RESIDENT_TARGET,
               f"onnxruntime + numpy alone, no server: {format_megabytes(bare_onnx_resident)}; "
               f"Flask + Keras peer: {format_megabytes(peer['resident_bytes'])}"),
        Target("serving process start to first answer", f"≤ {format_seconds(FIRST_ANSWER_TARGET)}",
               format_seconds(ours["first_answer_seconds"]), ours["first_answer_seconds"] <= FIRST_ANSWER_TARGET,
               f"Flask + Keras peer: {format_seconds(peer['first_answer_seconds'])}"),
    ]
    markdown = "\n\n".join([
        f"**Servers**, spawn to first 200 answer to a {PAD_SIDE}×{PAD_SIDE} PNG, then resident memory (median of {rounds}):",
        table(["Server", "Command", "Start to first answer", "Resident", "Peak resident"], server_rows),
        f"After {served:,} more requests (4 keep-alive clients) our server holds {format_megabytes(resident_after)} "
        f"(peak {format_megabytes(peak_after)}); the Flask + Keras peer needs "
        f"{format_ratio(ratio(peer['resident_bytes'], ours['resident_bytes']))} our memory.",
        f"**Worst-case inputs** (`python -m bench.large_images`): the largest images the server accepts, one "
        f"request at a time, peak resident (VmHWM, reset before each); then {large_images.PARALLEL} of the first at once: "
        f"peak {format_megabytes(parallel_peak)}.",
        table(["Input", "Body", "Idle", "Peak", "Above idle"], large_rows),
        f"**Bare runtimes**, a fresh process each (median of {rounds}): import, load the model, answer one digit:",
        table(["Process", "Command", "Import", "Load model", "First answer", "Whole process", "Resident"], cold_rows),
        "**Installed size** of each extra's packages in this virtualenv:",
        table(["Install", "Packages", "Size", "Largest"], size_rows),
        f"The training stack is {format_ratio(size_ratio)} the serving stack.",
        "**Model files:**",
        table(["Model", "File", "Bytes"], file_rows),
    ])
    return Section("Footprint", script_command("bench.footprint", args), markdown, targets)


if __name__ == "__main__":
    run_section("bench.footprint", __doc__.splitlines()[0], measure)
