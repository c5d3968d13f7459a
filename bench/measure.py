"""Timing on a shared, noisy machine: contenders run interleaved, round after round, and we keep medians."""

import gc
import time

import numpy as np


def time_calls(function, budget_seconds, min_calls=1):
    """Seconds per call of `function`, averaged over as many calls as fit in the budget (at least min_calls)."""
    calls = 0
    started = time.perf_counter()
    while True:
        function()
        calls += 1
        elapsed = time.perf_counter() - started
        if calls >= min_calls and elapsed >= budget_seconds:
            return elapsed / calls


def interleave(contenders, rounds, budget_seconds, warmup_calls=3):
    """Run every contender once per round, in a rotating order, so drift and noise hit them all alike.

    `contenders` maps a name to a zero-argument callable. Returns name -> list of seconds per call,
    one entry per round.
    """
    names = list(contenders)
    for name in names:
        for _ in range(warmup_calls):
            contenders[name]()
    samples = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection landing in one contender's slot would be charged to it alone
    try:
        for round_index in range(rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(time_calls(contenders[name], budget_seconds))
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def median(values):
    return float(np.median(values)) if len(values) else None


def percentile(values, q):
    return float(np.percentile(values, q)) if len(values) else None


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator
