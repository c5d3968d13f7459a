"""Soak: five minutes of /predict at full concurrency on loopback; errors, p99 and memory minute by minute.

    python -m bench.soak [--quick]

Our server (`python -m serve`) alone, 16 keep-alive clients without pause; its resident memory is
sampled every second. Holds if there are no errors, the last minute's p99 is within 1.5x of the first
minute's, and resident memory grows by less than 5 MB after the first minute.
"""

import time

import numpy as np

from bench.http import pad_pngs
from bench.load import build_request, run_load
from bench.models import load_manifest
from bench.report import Section, Target, format_megabytes, format_seconds, run_section, script_command, table
from bench.servers import machine_busy_seconds, our_server

CONCURRENCY = 16
# Shown as measured, never clamped: a figure below zero means the counters disagree, and says so.
BELOW_ZERO = (" (below zero, which no process can use: the machine's busy time from /proc/stat and the "
              "processes' own CPU times disagree by at least that much, so this share cannot be read)")
P99_DRIFT_LIMIT = 1.5       # last window's p99 / first window's p99
RESIDENT_GROWTH_LIMIT = 5e6  # bytes, from the end of the first window to the end


def measure(args):
    load_manifest(args.artifacts)
    duration, window = (3.0, 1.0) if args.quick else (300.0, 60.0)
    bodies, labels = pad_pngs(32)
    samples = []  # (seconds since start, resident bytes, server CPU s, machine busy CPU s, load generator CPU s)
    with our_server(args.work_dir, args.artifacts).start(bodies[0]) as server:
        requests = [build_request(server.port, body, "image/png") for body in bodies]
        sample = lambda elapsed: samples.append(
            (elapsed, server.memory()[0], server.cpu_seconds(), machine_busy_seconds(), time.process_time()))
        sample(0.0)
        result = run_load(server.port, requests, labels, concurrency=CONCURRENCY, duration=duration, on_tick=sample)
        sample(result.elapsed)
        peak = server.memory()[1]
        command = server.command

    sent_at, latencies = np.asarray(result.sent_at), np.asarray(result.latencies)
    windows = int(np.ceil(duration / window))
    rows, p99s, residents, others = [], [], [], []
    for index in range(windows):
        start, end = index * window, (index + 1) * window
        chosen = latencies[(sent_at >= start) & (sent_at < end)]
        first = min(samples, key=lambda entry: abs(entry[0] - start))  # samples come about once a second
        last = min(samples, key=lambda entry: abs(entry[0] - end))
        resident = last[1]
        seconds = max(last[0] - first[0], 1e-9)
        server_share = 100 * (last[2] - first[2]) / seconds
        # Whatever else the shared machine ran meanwhile: all busy CPU less ours and the load generator's.
        other_share = 100 * ((last[3] - first[3]) - (last[2] - first[2]) - (last[4] - first[4])) / seconds
        others.append(other_share)
        p99 = float(np.percentile(chosen, 99)) if len(chosen) else None
        p99s.append(p99)
        residents.append(resident)
        rows.append([f"{start:g}–{end:g} s", f"{len(chosen):,}", f"{len(chosen) / window:,.0f}",
                     format_seconds(float(np.median(chosen)) if len(chosen) else None), format_seconds(p99),
                     format_megabytes(resident), f"{server_share:.0f}%", f"{other_share:.0f}%"])
    drift = p99s[-1] / p99s[0] if p99s[0] and p99s[-1] else None
    growth = residents[-1] - residents[0]
    unit = "minute" if window == 60 else "window"
    targets = [
        Target(f"soak, {duration:g} s at {CONCURRENCY} clients: errors", "0",
               f"{result.errors} errors in {result.completed:,} requests", result.errors == 0),
        Target(f"soak: p99 stable, first {unit} vs last", f"last ≤ {P99_DRIFT_LIMIT}× first",
               f"{format_seconds(p99s[0])} → {format_seconds(p99s[-1])}", drift is not None and drift <= P99_DRIFT_LIMIT,
               f"other processes on the machine used {others[0]:.0f}% CPU in the first {unit}, "
               f"{others[-1]:.0f}% in the last" + (BELOW_ZERO if min(others[0], others[-1]) < 0 else "")),
        Target(f"soak: resident memory flat after the first {unit}", f"grows < {format_megabytes(RESIDENT_GROWTH_LIMIT)}",
               f"{format_megabytes(residents[0])} → {format_megabytes(residents[-1])} (peak {format_megabytes(peak)})",
               growth < RESIDENT_GROWTH_LIMIT),
    ]
    markdown = "\n\n".join([
        f"`{command}` under {CONCURRENCY} closed-loop keep-alive clients (bench/load.py) for {duration:g} s, "
        f"the same {len(bodies)} PNG digits as the HTTP section; {result.completed:,} requests, {result.errors} errors, "
        f"{result.wrong_digits} answered with another digit than the label, "
        f"statuses {dict(sorted(result.statuses.items()))}; the client used {100 * result.client_cpu / result.elapsed:.0f}% of one core.",
        table(["Window", "Requests", "Req/s", "p50", "p99", "Resident at end", "Server CPU", "Other processes' CPU"], rows),
        "CPU columns are percent of one core (200% = both). The machine is shared: the last column is every other "
        "process's CPU in that window (all busy time less the server's and the load generator's), as measured: "
        "a value below zero is the counters' disagreement, not a clamp.",
    ])
    return Section("Soak", script_command("bench.soak", args), markdown, targets)


if __name__ == "__main__":
    run_section("bench.soak", __doc__.splitlines()[0], measure)
