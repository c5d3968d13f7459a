"""HTTP: POST /predict latency and throughput at 1, 4 and 16 keep-alive clients, ours vs a Flask + Keras server.

    python -m bench.http [--quick]

The servers run at once as separate processes on loopback and get the same 280x280 PNGs of MNIST
test digits; the load alternates between them round after round (bench/load.py, one epoll loop).
Ours runs twice: one process, and `--workers N` (one per core) on one port.
"""

from bench.load import LoadResult, build_request, run_load
from bench.measure import median, ratio
from bench.models import PAD_SIDE, load_manifest, mnist_test, pad_image, png_bytes
from bench.repeats import MIN_REPEATS, Repeated
from bench.report import Section, Target, format_megabytes, format_ratio, format_seconds, run_section, script_command, table
from bench.servers import our_server, peer_server
from serve.workers import default_worker_count

CONCURRENCY = (1, 4, 16)
DIGITS = 32
P50_TARGET = 0.002          # seconds, one client (issue 3)
THROUGHPUT_TARGET = 800     # requests/s at 16 clients (issue 3)
PEER_RATIO_TARGET = 30      # x the Flask + Keras server's throughput at 16 clients (issue 3)


def pad_pngs(count):
    """PNGs of MNIST test digits scaled up to the pad's size, and their labels."""
    images, labels = mnist_test(count)
    return [png_bytes(pad_image(image)) for image in images], [int(label) for label in labels]


def pool(runs):
    """One LoadResult holding every request of several rounds."""
    pooled = LoadResult(runs[0].concurrency)
    for run in runs:
        pooled.latencies += run.latencies
        pooled.sent_at += run.sent_at
        pooled.errors += run.errors
        pooled.wrong_digits += run.wrong_digits
        pooled.elapsed += run.elapsed
        pooled.client_cpu += run.client_cpu
        pooled.server_cpu += run.server_cpu
    return pooled


def load_line(server, result, throughput):
    return [server.name, result.concurrency, f"{result.completed:,}", result.errors, result.wrong_digits,
            throughput.describe(lambda value: f"{value:,.0f}"), format_seconds(result.latency_percentile(50)),
            format_seconds(result.latency_percentile(99)), f"{100 * result.server_cpu / result.elapsed:.0f}%",
            f"{100 * result.client_cpu / result.elapsed:.0f}%"]


def measure(args):
    load_manifest(args.artifacts)  # fail early on missing artifacts
    rounds, duration, warmup = (1, 0.5, 0.3) if args.quick else (MIN_REPEATS, 5.0, 2.0)
    bodies, labels = pad_pngs(DIGITS)
    workers = default_worker_count()
    ours, peer = our_server(args.work_dir, args.artifacts), peer_server(args.work_dir, args.artifacts)
    ours_workers = our_server(args.work_dir, args.artifacts, workers=workers)
    with ours.start(bodies[0]), ours_workers.start(bodies[0]), peer.start(bodies[0]):
        memory_at_start = ours.memory()[0]
        workers_memory = ours_workers.memory()[0]
        servers = (ours, ours_workers, peer)
        requests = {server: [build_request(server.port, body, "image/png") for body in bodies] for server in servers}
        for server in servers:
            run_load(server.port, requests[server], labels, concurrency=4, duration=warmup)
        results = {(server, concurrency): [] for server in servers for concurrency in CONCURRENCY}
        for concurrency in CONCURRENCY:
            for round_index in range(rounds):
                order = servers if round_index % 2 == 0 else servers[::-1]
                for server in order:
                    cpu_before = server.cpu_seconds()
                    run = run_load(server.port, requests[server], labels, concurrency=concurrency, duration=duration)
                    run.server_cpu = server.cpu_seconds() - cpu_before
                    results[server, concurrency].append(run)
        served = sum(result.completed for (server, _), runs in results.items() if server is ours for result in runs)
        memory_at_end = ours.memory()

    rows, ratio_rows, worker_rows, summary = [], [], [], {}
    for concurrency in CONCURRENCY:
        for server in servers:
            runs = results[server, concurrency]
            pooled = pool(runs)
            summary[server, concurrency] = {
                "throughput": median([run.throughput for run in runs]),
                "throughput_runs": Repeated([run.throughput for run in runs]),
                "p50_runs": Repeated([run.latency_percentile(50) for run in runs]),
                "p50": pooled.latency_percentile(50), "p99": pooled.latency_percentile(99), "errors": pooled.errors,
                "server_cpu": 100 * pooled.server_cpu / pooled.elapsed, "client_cpu": 100 * pooled.client_cpu / pooled.elapsed,
                "cpu_per_request": pooled.server_cpu / max(1, pooled.completed),
            }
            rows.append(load_line(server, pooled, summary[server, concurrency]["throughput_runs"]))
        ours_figures, peer_figures = summary[ours, concurrency], summary[peer, concurrency]
        ratio_rows.append([concurrency, format_ratio(ratio(ours_figures["throughput"], peer_figures["throughput"])),
                           format_ratio(ratio(peer_figures["p50"], ours_figures["p50"]))])
        workers_figures = summary[ours_workers, concurrency]
        worker_rows.append([concurrency, f"{ours_figures['throughput']:,.0f}", f"{workers_figures['throughput']:,.0f}",
                            format_ratio(ratio(workers_figures["throughput"], ours_figures["throughput"])),
                            f"{ours_figures['server_cpu']:.0f}%", f"{workers_figures['server_cpu']:.0f}%"])

    single, full = summary[ours, 1], summary[ours, CONCURRENCY[-1]]
    peer_ratio = ratio(full["throughput"], summary[peer, CONCURRENCY[-1]]["throughput"])
    # Judged on the median of the rounds; the spread is shown, and a verdict the rounds disagree on says so.
    p50_met, p50_note = single["p50_runs"].judge(lambda p50: p50 <= P50_TARGET)
    throughput_met, throughput_note = full["throughput_runs"].judge(lambda throughput: throughput >= THROUGHPUT_TARGET)
    targets = [
        Target("/predict p50, one client, 280×280 PNG", f"≤ {format_seconds(P50_TARGET)}",
               single["p50_runs"].describe(format_seconds), p50_met,
               "; ".join(filter(None, [p50_note, "of which the model, normalisation included: see Model latency (ONNX reader)"]))),
        Target(f"/predict throughput, {CONCURRENCY[-1]} clients, zero errors", f"≥ {THROUGHPUT_TARGET} req/s",
               f"{full['throughput_runs'].describe(lambda value: f'{value:,.0f}')} req/s, {full['errors']} errors",
               throughput_met and full["errors"] == 0,
               "; ".join(filter(None, [throughput_note,
                   f"our server used {full['server_cpu']:.0f}% CPU (of 200%), {single['cpu_per_request'] * 1e3:.2f} ms of CPU per "
                   f"request with one client; the load generator {full['client_cpu']:.0f}%"]))),
        Target(f"/predict throughput vs Flask + Keras, {CONCURRENCY[-1]} clients", f"≥ {PEER_RATIO_TARGET}×",
               format_ratio(peer_ratio), peer_ratio is not None and peer_ratio >= PEER_RATIO_TARGET,
               f"medians of the rounds; the peer used {summary[peer, CONCURRENCY[-1]]['server_cpu']:.0f}% CPU for "
               f"{summary[peer, CONCURRENCY[-1]]['throughput']:,.1f} req/s"),
    ]
    png_sizes = [len(body) for body in bodies]
    markdown = "\n\n".join([
        f"Servers: `{ours.command}`, `{ours_workers.command}` and `{peer.command}` (all waitress, same thread count per process). "
        f"Body: one of {DIGITS} MNIST test digits drawn at {PAD_SIDE}×{PAD_SIDE} "
        f"(8-bit grey PNG, {min(png_sizes):,}–{max(png_sizes):,} bytes), `Content-Type: image/png`. "
        f"Load: bench/load.py, closed loop, keep-alive; {rounds} round(s) of {duration:g} s per server and concurrency, "
        "alternating servers; req/s is the median over rounds with its spread (min–max), p50/p99 pool every request; "
        "targets are judged on the medians (bench/repeats.py).",
        table(["Server", "Clients", "Requests", "Errors", "Wrong digit", "Req/s", "p50", "p99", "Server CPU", "Client CPU"], rows),
        table(["Clients", "Throughput, ours ÷ peer", "p50, peer ÷ ours"], ratio_rows),
        f"One process against `--workers {workers}` (`{ours_workers.command}`: one process per core on one port), "
        f"same run, same rounds. The {workers} workers hold {format_megabytes(workers_memory)} resident in all "
        f"(one process: {format_megabytes(memory_at_start)}).",
        table(["Clients", "Req/s, 1 process", f"Req/s, {workers} workers", "Ratio", "Server CPU, 1 process",
               f"Server CPU, {workers} workers"], worker_rows),
        f"Our server's resident memory: {format_megabytes(memory_at_start)} after its first answer, "
        f"{format_megabytes(memory_at_end[0])} after {served:,} more requests (peak {format_megabytes(memory_at_end[1])}).",
        "CPU columns are percent of one core over the run (200% = both cores). The load generator is one Python "
        "thread on the same 2 cores; when its column nears 100%, the client, not the server, sets the ceiling. "
        "A Python server whose column stays near 100% is held by its interpreter lock, whatever its thread count.",
    ])
    return Section("HTTP /predict", script_command("bench.http", args), markdown, targets)


if __name__ == "__main__":
    run_section("bench.http", __doc__.splitlines()[0], measure)
