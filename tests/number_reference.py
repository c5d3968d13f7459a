"""The numpy oracle of the number reader's decoding (convert/number_decode.py), written from its rules.

Given the CTC frames the graph computed and the digit reader's answers on each piece (the shipped digit reader,
run on the very same column slices), it decides the digits, boxes, confidences and verdict in plain Python.
"""

from dataclasses import dataclass

import numpy as np

from reader.contract import NOT_DIGIT_CLASS, NUMBER_FRAME_STRIDE, NUMBER_MARGIN, NUM_DIGITS
from reader.normalization import INK_THRESHOLD

FAR = 2 ** 40


@dataclass
class Reading:
    digits: list
    probabilities: np.ndarray
    confidences: np.ndarray
    doubtful: list
    boxes: list
    verdict: str
    not_number: float


def pieces_of(ink_columns, ink_rows_of, line_height, speck_share):
    """Runs of inked columns, specks dropped: [(start, end)]."""
    padded = np.concatenate([[False], ink_columns, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    pieces = []
    for start, end in zip(edges[::2], edges[1::2]):
        top, bottom = ink_rows_of(start, end)
        speck = speck_share * line_height
        if not (bottom - top < speck and end - start < speck):
            pieces.append((int(start), int(end)))
    return pieces


def greedy_runs(frames):
    """[(digit, first frame, frames of its run)] of greedy CTC."""
    best = frames.argmax(1)
    runs, current = [], None
    for index, label in enumerate(best):
        if index == 0 or label != best[index - 1]:
            current = [int(label), index, []]
            runs.append(current)
        current[2].append(index)
    return [run for run in runs if run[0] < NUM_DIGITS]


def decode(image, frames, left_col, col_end, column_scale, read_piece, decoding, verdict):
    """The reader's answer. `read_piece(image slice)` -> (probabilities [10], not_digit, verdict name)."""
    mask = image > INK_THRESHOLD
    ink = np.clip(image, 0, 1) * mask
    ink_columns = mask.any(0)
    rows = np.flatnonzero(mask.any(1))
    line_height = float(rows[-1] + 1 - rows[0]) if len(rows) else float(image.shape[0])

    def ink_rows_of(start, end):
        inked = np.flatnonzero(mask[:, start:end].any(1))
        return (inked[0], inked[-1] + 1) if len(inked) else (0, 1)

    pieces = pieces_of(ink_columns, ink_rows_of, line_height, decoding["speck_share"])
    steps = np.arange(len(frames), dtype=np.float64)
    frame_x = np.clip((steps * NUMBER_FRAME_STRIDE + NUMBER_FRAME_STRIDE / 2 - NUMBER_MARGIN) * column_scale + left_col, left_col, col_end)
    runs = greedy_runs(frames)
    ctc = [(digit, frame_x[members].mean(), frames[first, :NUM_DIGITS]) for digit, first, members in runs]

    if not pieces:
        return Reading([], np.zeros((0, NUM_DIGITS)), np.zeros(0), [], [], "not_number", 0.0)
    cuts = [(end + next_start) / 2 for (_, end), (next_start, _) in zip(pieces, pieces[1:])]
    owner = lambda x: sum(x >= cut for cut in cuts)
    owners = [owner(x) for _, x, _ in ctc]
    per_piece = [owners.count(index) for index in range(len(pieces))]

    def reading(start, end):
        probabilities, not_digit, said = read_piece(image[:, start:end])
        return probabilities, float(probabilities.max() * (1 - not_digit)), said

    singles = [reading(*piece) for piece in pieces]
    column_ink = ink.sum(0)
    wide = [end - start >= decoding["wide_share"] * line_height for start, end in pieces]
    halves = {}
    for index, (start, end) in enumerate(pieces):
        if wide[index] and end - start >= decoding["min_split_width"]:
            columns = np.arange(len(column_ink))
            middle = (columns >= start + 0.3 * (end - start)) & (columns < start + 0.7 * (end - start))
            split = min(max(int(np.argmin(column_ink + FAR * ~middle)), start + 1), end - 1)
            halves[index] = ((start, split), (split, end), reading(start, split), reading(split, end))
    pairs = {}
    for index in range(len(pieces) - 1):
        if per_piece[index] + per_piece[index + 1] <= 1:
            pairs[index] = reading(pieces[index][0], pieces[index + 1][1])
    merge = [index in pairs and pairs[index][2] == "digit" and pairs[index][1] >= decoding["merge_sure_at_least"]
             for index in range(len(pieces) - 1)]
    confidence = lambda index: pairs[index][1] if index in pairs else 0.0
    merged = []
    for index, wanted in enumerate(merge):
        beaten_left = index > 0 and merge[index - 1] and confidence(index - 1) >= confidence(index)
        beaten_right = index + 1 < len(merge) and merge[index + 1] and confidence(index + 1) > confidence(index)
        merged.append(wanted and not beaten_left and not beaten_right)
    merged = [wanted and not (index > 0 and merged[index - 1]) for index, wanted in enumerate(merged)]
    covered = [(index < len(merged) and merged[index]) or (index > 0 and merged[index - 1]) for index in range(len(pieces))]

    items, doubtful_any, ctc_pieces, unexplained_pieces, explained = [], False, set(), set(), False
    for index, (start, end) in enumerate(pieces):
        if covered[index]:
            continue
        probabilities, confidence_, said = singles[index]
        halves_are_digits = index in halves and all(half[2] == "digit" for half in halves[index][2:])
        touching = per_piece[index] >= 2 and halves_are_digits
        if said == "digit" and not touching:
            items.append(((start + end) / 2, int(probabilities.argmax()), probabilities, confidence_, False, start, end))
            explained = True
        elif halves_are_digits and per_piece[index] <= 1:
            for (left, right), (half_probabilities, half_confidence, _) in zip(halves[index][:2], halves[index][2:]):
                items.append(((left + right) / 2, int(half_probabilities.argmax()), half_probabilities, half_confidence, False, left, right))
            explained = True
        elif per_piece[index] >= 1:
            ctc_pieces.add(index)
            explained = True
        else:
            # Doubtful or unexplained, the digit reader's best guess stands, as a doubt.
            doubtful_any = True
            items.append(((start + end) / 2, int(probabilities.argmax()), probabilities, confidence_, True, start, end))
            unexplained_pieces.add(index)
            explained = explained or said == "unsure"
    for index, wanted in enumerate(merged):
        if wanted:
            probabilities, confidence_, _ = pairs[index]
            start, end = pieces[index][0], pieces[index + 1][1]
            items.append(((start + end) / 2, int(probabilities.argmax()), probabilities, confidence_, False, start, end))
            explained = True
    for number, ((digit, x, part), piece) in enumerate(zip(ctc, owners)):
        if piece not in ctc_pieces:
            continue
        def cut(left, right):
            centres = np.arange(len(column_ink)) + 0.5
            return int(np.argmin(column_ink + FAR * ~((centres >= left) & (centres < right))))
        start = cut(ctc[number - 1][1], x) if number > 0 and owners[number - 1] == piece else pieces[piece][0]
        end = cut(x, ctc[number + 1][1]) if number + 1 < len(ctc) and owners[number + 1] == piece else pieces[piece][1]
        items.append((x, digit, part / max(part.sum(), 1e-12), float(part.max()), False, start, end))
    items.sort(key=lambda item: item[0])

    boxes = []
    for *_, start, end in items:
        columns = np.flatnonzero(ink_columns[start:end]) + start
        inked_rows = np.flatnonzero(mask[:, start:end].any(1))
        boxes.append((int(columns[0]), int(inked_rows[0]), int(columns[-1]) + 1, int(inked_rows[-1]) + 1))
    confidences = np.array([item[3] for item in items], np.float64)
    speaking = [index in ctc_pieces or (index in unexplained_pieces and singles[index][2] != "unsure")
                for index in range(len(pieces))]
    frame_owner = [owner(x) for x in frame_x]
    not_number = max([float(frames[t, NOT_DIGIT_CLASS]) for t in range(len(frames)) if speaking[frame_owner[t]]], default=0.0)
    doubtful = [item[4] or item[3] < verdict["sure_at_least"] for item in items]
    if not explained or not_number >= verdict["not_number_at_least"]:
        said = "not_number"
    elif any(doubtful):
        said = "unsure"
    else:
        said = "number"
    return Reading([item[1] for item in items], np.array([item[2] for item in items]).reshape(-1, NUM_DIGITS),
                   confidences, doubtful, boxes, said, not_number)
