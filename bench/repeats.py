"""One run is not a figure: a timing repeated, its median (what targets are judged on) and its spread.

A Repeated holds one value per repeat. `describe` writes "median (min–max over n runs)"; `judge` says
whether the median meets a goal and, when the repeats alone would have given different verdicts, says so.
"""

from dataclasses import dataclass

import numpy as np

MIN_REPEATS = 3  # fewer than this is a smoke run, not a figure


@dataclass
class Repeated:
    values: list

    @property
    def median(self):
        return float(np.median(self.values))

    @property
    def low(self):
        return float(min(self.values))

    @property
    def high(self):
        return float(max(self.values))

    def describe(self, form=str):
        """`form(median)`, then the spread over the repeats: "882 (min–max 409–895, 3 runs)"."""
        if len(self.values) == 1:
            return f"{form(self.median)} (1 run: no spread)"
        return f"{form(self.median)} (min–max {form(self.low)}–{form(self.high)}, {len(self.values)} runs)"

    def judge(self, meets):
        """(whether the median meets the goal, a note if the repeats disagree about it, else "")."""
        met = meets(self.median)
        each = [bool(meets(value)) for value in self.values]
        if all(each) or not any(each):
            return met, ""
        return met, f"the repeats disagree: {sum(each)} of {len(each)} met the goal alone; judged on the median"
