"""How bench/numbers.py scores a number read and splits a line for the baseline."""

from functools import lru_cache

import numpy as np
import pytest

from bench.numbers import Tally, align, box_overlap, empty_column_pieces


@pytest.mark.parametrize("written, read, substitutions, deletions, insertions", [
    ("2026", "2026", [], [], []),
    ("2026", "2036", [("2", "3")], [], []),
    ("2026", "226", [], ["0"], []),
    ("2026", "20266", [], [], ["6"]),
    ("7", "", [], ["7"], []),
    ("", "41", [], [], ["4", "1"]),
    ("1234", "4321", [("1", "4"), ("2", "3"), ("3", "2"), ("4", "1")], [], []),
])
def test_alignment_counts_each_kind_of_error(written, read, substitutions, deletions, insertions):
    found = align(written, read)
    assert sorted(found[0]) == sorted(substitutions)
    assert sorted(found[1]) == sorted(deletions) and sorted(found[2]) == sorted(insertions)


def edit_distance(first, second):
    """Levenshtein distance by plain recursion: the reference the alignment's counts must add up to."""
    @lru_cache(maxsize=None)
    def distance(i, j):
        if not i or not j:
            return i + j
        return min(distance(i - 1, j - 1) + (first[i - 1] != second[j - 1]), distance(i - 1, j) + 1, distance(i, j - 1) + 1)

    return distance(len(first), len(second))


def test_alignment_is_minimal():
    rng = np.random.default_rng(0)
    for _ in range(200):
        written = "".join(rng.choice(list("0123456789"), size=rng.integers(0, 9)))
        read = "".join(rng.choice(list("0123"), size=rng.integers(0, 9)))
        substitutions, deletions, insertions = align(written, read)
        assert len(written) - len(deletions) + len(insertions) == len(read)
        assert len(substitutions) + len(deletions) + len(insertions) == edit_distance(written, read)


def test_tally_scores_whole_numbers_digits_verdicts_and_boxes():
    tally = Tally()
    written_boxes = [(0, 0, 10, 20), (12, 0, 22, 20), (24, 0, 34, 20), (36, 0, 46, 20)]
    found_boxes = [(0, 0, 10, 20), (12, 0, 22, 20), (24, 0, 46, 20), (36, 0, 46, 20)]  # the third box spans two digits
    tally.add("2026", "2026", "number", found_boxes, written_boxes)
    tally.add("2026", "226", "number", found_boxes[:3], written_boxes)
    tally.add("7", "1", "unsure", [(0, 0, 9, 9)], [(0, 0, 9, 9)])
    assert tally.accuracy() == pytest.approx(1 / 3)
    assert tally.accuracy(4) == 0.5 and tally.accuracy(1) == 0.0
    assert tally.digit_accuracy() == pytest.approx(1 - 2 / 9)
    assert tally.confusions == {"0→∅": 1, "7→1": 1}
    assert tally.wrong_yet_number == 1 and tally.verdicts["unsure"] == 1
    assert (tally.boxes_on_digit, tally.boxes_checked) == (3, 4)  # boxes count on lines read right only


@pytest.mark.parametrize("first, second, overlap", [
    ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
    ((0, 0, 10, 10), (5, 0, 15, 10), 1 / 3),
    ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),
    ((0, 0, 10, 10), (2, 2, 4, 4), 0.04),
])
def test_box_overlap_is_intersection_over_union(first, second, overlap):
    assert box_overlap(first, second) == pytest.approx(overlap)


def test_pieces_are_runs_of_inked_columns():
    image = np.zeros((5, 12), np.float32)
    image[1:4, 0:2] = 1.0
    image[2, 5:9] = 0.5
    image[3, 10] = 0.05  # below the ink threshold: background
    image[0, 11] = 1.0
    assert [tuple(map(int, piece)) for piece in empty_column_pieces(image)] == [(0, 2), (5, 9), (11, 12)]
    assert empty_column_pieces(np.zeros((3, 3), np.float32)) == []
