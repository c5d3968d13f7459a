"""Where "digit" ends and "unsure" or "not_digit" begin: thresholds tuned on held-out validation digits."""

import numpy as np

from reader.contract import NOT_DIGIT_CLASS, NUM_DIGITS

MAX_DIGITS_REFUSED = 0.015  # the product promises at most 2% of drawn digits answered anything but "digit"


def verdicts(classes, not_digit_at_least, sure_at_least):
    """0 digit, 1 unsure, 2 not_digit for softmax outputs [N, 11], exactly as the shipped graph decides."""
    not_digit = classes[:, NOT_DIGIT_CLASS]
    top = classes[:, :NUM_DIGITS].max(1)
    return np.where(not_digit >= not_digit_at_least, 2, np.where(top < sure_at_least, 1, 0))


def tune(classes, labels, max_refused=MAX_DIGITS_REFUSED):
    """The thresholds that turn away the most validation non-digits while refusing at most `max_refused` digits."""
    is_digit = labels < NUM_DIGITS
    best = None
    for not_digit_at_least in np.round(np.arange(0.05, 0.96, 0.05), 2):
        for sure_at_least in np.round(np.arange(0.2, 0.91, 0.05), 2):
            decided = verdicts(classes, not_digit_at_least, sure_at_least)
            refused = float(np.mean(decided[is_digit] != 0))
            caught = float(np.mean(decided[~is_digit] != 0)) if (~is_digit).any() else 0.0
            if refused <= max_refused and (best is None or caught > best["non_digits_caught"]):
                best = {"not_digit_at_least": float(not_digit_at_least), "sure_at_least": float(sure_at_least),
                        "digits_refused": round(refused, 5), "non_digits_caught": round(caught, 5)}
    return best
