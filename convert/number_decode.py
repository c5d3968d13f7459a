"""The number reader's decoding graph: every ink piece read by the digit reader, CTC only where digits touch.

People mostly write a number as separate digits with gaps between them. The sequence model (CTC) reads lines
composed like its training lines well, yet on other hands it drops or invents digits, while the digit reader
reads a clean piece of ink as well as it reads any single digit. So the graph:

1. finds the ink pieces: runs of input columns holding ink, between empty columns; specks far smaller than the
   line in both directions are ignored;
2. reads every piece, and every two neighbouring pieces together, with the shipped digit reader itself, in an
   ONNX Loop (its own normalisation, classifier and verdict, exactly as `POST /predict` would read that piece);
3. greedily decodes the CTC frames and gives each CTC digit to the piece under it (pieces meet halfway across
   their gap);
4. decides per piece:
   - two neighbouring pieces that read as one digit together, while CTC reads at most one digit over both, are
     one digit in two strokes (an open 4, a 5 whose bar floats free);
   - a piece the digit reader calls a digit is that digit, unless it is wide and CTC reads several digits in it
     (digits that touch);
   - otherwise CTC's digits in that piece; a piece the digit reader doubts and CTC leaves empty is read as the
     digit reader's doubtful digit;
   - a piece that nothing explains makes the whole answer `unsure`: ink is never dropped silently;
5. orders the digits left to right, gives each its box (a piece's ink; for touching digits the column of least
   ink between CTC's neighbours), and decides the verdict.
The numpy oracle of this decoding lives in tests/number_reference.py.
"""

import numpy as np
import onnx
from onnx import helper

from convert.graph_builder import BOOL, FLOAT, INT64, GraphBuilder
from reader.contract import (INPUT_NAME, NOT_DIGIT_CLASS, NOT_DIGIT_NAME, NOT_NUMBER_NAME, NUMBER_BOXES_NAME,
                             NUMBER_CLASSES, NUMBER_CONFIDENCE_NAME, NUMBER_CONFIDENCES_NAME, NUMBER_DIGITS_NAME,
                             NUMBER_DOUBTFUL_NAME, NUMBER_FRAME_STRIDE, NUMBER_MARGIN, NUMBER_PROBABILITIES_NAME,
                             NUMBER_VERDICT_NAME,
                             NUMBER_VERDICTS, NUM_DIGITS, PROBABILITIES_NAME, VERDICT_NAME, VERDICTS)

PIECE_PREFIX = "piece/"   # the digit reader's names inside the Loop body
FAR = 2 ** 40             # "no neighbour on this side", in input columns

# Tuned on training-side lines (MNIST validation digits, Hershey's training fonts), never on bench/'s sets.
SPECK_SHARE = 0.15        # a piece smaller than this share of the line's ink height both ways is a speck
WIDE_SHARE = 0.9          # a piece at least this wide (share of the line's height) may hold touching digits
MERGE_SURE_AT_LEAST = 0.9 # two pieces read as one digit only when the digit reader is this sure of it
MIN_SPLIT_WIDTH = 4       # a wide piece is read as two halves only when it is at least this many columns wide


def describe_decoding():
    """The manifest's numbers.decoding section: how each ink piece is read."""
    return {
        "pieces": "runs of input columns holding ink (pixels above the ink threshold), between empty columns",
        "speck_share": SPECK_SHARE,
        "wide_share": WIDE_SHARE,
        "merge_sure_at_least": MERGE_SURE_AT_LEAST,
        "min_split_width": MIN_SPLIT_WIDTH,
        "rules": [
            "pieces smaller than speck_share of the line's ink height both ways are specks and are ignored",
            "every piece, and every two neighbouring pieces over which CTC reads at most one digit, is read by the "
            "embedded digit reader",
            "CTC digits belong to the piece under their frame; neighbouring pieces meet halfway across their gap",
            "two neighbouring pieces are one digit when read together as a digit with confidence >= "
            "merge_sure_at_least and CTC reads at most one digit over both",
            "a piece the digit reader calls a digit is that digit, unless it is at least wide_share of the line's "
            "height wide and CTC reads two or more digits in it",
            "otherwise CTC's digits in the piece; with none, the digit reader's doubtful digit when it is unsure",
            "a piece nothing explains makes the verdict unsure",
        ],
    }


def piece_reader_body(digit_reader, segment_starts, segment_ends):
    """The Loop body: read input columns [segment_starts[i], segment_ends[i]) with the whole digit reader."""
    reader = onnx.compose.add_prefix(digit_reader, PIECE_PREFIX)
    b = GraphBuilder("decode/body/")
    iteration, condition = "decode/body/iteration", "decode/body/condition"
    start = b.op("Unsqueeze", b.gather(segment_starts, iteration), b.i64(0))
    end = b.op("Unsqueeze", b.gather(segment_ends, iteration), b.i64(0))
    b.op("Slice", INPUT_NAME, start, end, b.i64(1), name=PIECE_PREFIX + INPUT_NAME)
    condition_out = b.op("Identity", condition)
    outputs = [PIECE_PREFIX + name for name in (PROBABILITIES_NAME, NOT_DIGIT_NAME, VERDICT_NAME)]
    return helper.make_graph(
        [*b.nodes, *reader.graph.node],
        "read_piece",
        [helper.make_tensor_value_info(iteration, INT64, []), helper.make_tensor_value_info(condition, BOOL, [])],
        [helper.make_tensor_value_info(condition_out, BOOL, []),
         helper.make_tensor_value_info(outputs[0], FLOAT, [NUM_DIGITS]),
         helper.make_tensor_value_info(outputs[1], FLOAT, [1]),
         helper.make_tensor_value_info(outputs[2], INT64, [1])],
        initializer=[*b.initializers, *reader.graph.initializer],
    )


def greedy_ctc(g, frames_name):
    """Greedy CTC over the frames: (frames [T, classes], run of each frame [T], each digit's run [K], its first
    frame [K], digits [K], probabilities [K, 10], confidences [K])."""
    frames = g.op("Reshape", frames_name, g.i64(-1, NUMBER_CLASSES))
    best = g.op("ArgMax", frames, axis=1, keepdims=0)
    starts = g.op("Not", g.op("Equal", best, g.shifted_right(best, g.i64(-1))))
    runs = g.op("CumSum", g.cast(starts, INT64), g.const(0, np.int64))
    kept = g.op("And", starts, g.op("Less", best, g.i64(NUM_DIGITS)))
    index = g.op("Reshape", g.op("NonZero", kept), g.i64(-1))
    digits = g.gather(best, index)
    # Each digit's probabilities are its first frame's, renormalised over the ten digits.
    digit_part = g.slice(g.gather(frames, index), 0, NUM_DIGITS, axis=1)
    mass = g.op("Max", g.op("ReduceSum", digit_part, g.i64(1), keepdims=1), g.f32(1e-12))
    probabilities = g.op("Div", digit_part, mass)
    confidences = g.op("ReduceMax", digit_part, g.i64(1), keepdims=0)
    return frames, runs, g.gather(runs, index), index, digits, probabilities, confidences


def run_centres(g, frame_x, runs, digit_runs):
    """Where each CTC digit sits: the mean column of the frames of its run. Its first frame alone often fires
    early, over the neighbour before it."""
    members = g.cast(g.op("Equal", g.column(digit_runs), g.row(runs)), FLOAT)
    total = g.op("ReduceSum", g.op("Mul", members, g.row(frame_x)), g.i64(1), keepdims=0)
    return g.op("Div", total, g.op("ReduceSum", members, g.i64(1), keepdims=0))


def frame_columns(g, frames):
    """Each frame's centre in input columns, kept within the ink's columns."""
    count = g.scalar(g.cast(g.length(frames), FLOAT))
    steps = g.op("Range", g.f32(0.0), count, g.f32(1.0))
    centre = g.op("Add", g.op("Mul", steps, g.f32(float(NUMBER_FRAME_STRIDE))), g.f32(NUMBER_FRAME_STRIDE / 2.0))
    offset = g.op("Mul", g.op("Sub", centre, g.f32(float(NUMBER_MARGIN))), "column_scale")
    left, end = g.cast("left_col", FLOAT), g.cast("col_end", FLOAT)
    return g.op("Min", g.op("Max", g.op("Add", offset, left), left), end)


def ink_pieces(g):
    """(starts [P], ends [P], nothing [1]): the runs of inked input columns, specks dropped; when nothing is
    left, one placeholder piece over the whole width, flagged by `nothing`, keeps every shape non-empty."""
    has_ink = g.op("Greater", "col_has_ink", g.f32(0.0))
    no = g.const([False], np.bool_)
    begins = g.op("And", has_ink, g.op("Not", g.shifted_right(has_ink, no)))
    finishes = g.op("And", has_ink, g.op("Not", g.shifted_left(has_ink, no)))
    starts = g.op("Reshape", g.op("NonZero", begins), g.i64(-1))
    ends = g.op("Add", g.op("Reshape", g.op("NonZero", finishes), g.i64(-1)), g.i64(1))
    tops, bottoms = ink_rows(g, starts, ends)
    line_height = g.cast(g.op("Sub", "row_end", "top_row"), FLOAT)
    speck = g.op("Mul", line_height, g.f32(SPECK_SHARE))
    short = g.op("Less", g.cast(g.op("Sub", bottoms, tops), FLOAT), speck)
    narrow = g.op("Less", g.cast(g.op("Sub", ends, starts), FLOAT), speck)
    keep = g.op("Not", g.op("And", short, narrow))
    starts, ends = g.compress(starts, keep), g.compress(ends, keep)
    count = g.length(starts)
    nothing = g.op("Equal", count, g.i64(0))
    at_least_one = g.op("Max", count, g.i64(1))
    width = g.op("Shape", "col_has_ink")
    starts = g.op("Slice", g.op("Concat", starts, g.i64(0), axis=0), g.i64(0), at_least_one)
    ends = g.op("Slice", g.op("Concat", ends, width, axis=0), g.i64(0), at_least_one)
    return starts, ends, nothing, line_height


def column_masks(g, starts, ends):
    """[N, W] bool: which input columns lie in [starts[n], ends[n])."""
    width = g.scalar(g.op("Shape", "col_has_ink"))
    columns = g.row(g.op("Range", g.const(0, np.int64), width, g.const(1, np.int64)))
    return g.op("And", g.op("GreaterOrEqual", columns, g.column(starts)), g.op("Less", columns, g.column(ends)))


def ink_rows(g, starts, ends):
    """(first row, last row + 1) of the ink within each column range."""
    masks = g.cast(column_masks(g, starts, ends), FLOAT)
    row_ink = g.op("Transpose", g.op("MatMul", "ink_mask", g.op("Transpose", masks, perm=[1, 0])), perm=[1, 0])
    rows = g.cast(g.op("Greater", row_ink, g.f32(0.0)), FLOAT)
    first = g.op("ArgMax", rows, axis=1, keepdims=0, select_last_index=0)
    last = g.op("ArgMax", rows, axis=1, keepdims=0, select_last_index=1)
    return first, g.op("Add", last, g.i64(1))


def ink_boxes(g, starts, ends):
    """[N, 4] int64: x0, y0, x1, y1 of the ink within each column range, x1/y1 exclusive."""
    inked = g.op("Mul", g.cast(column_masks(g, starts, ends), FLOAT), g.row("col_has_ink"))
    x0 = g.op("ArgMax", inked, axis=1, keepdims=1, select_last_index=0)
    x1 = g.op("Add", g.op("ArgMax", inked, axis=1, keepdims=1, select_last_index=1), g.i64(1))
    row_ink = g.op("Transpose", g.op("MatMul", "ink_mask", g.op("Transpose", inked, perm=[1, 0])), perm=[1, 0])
    rows = g.cast(g.op("Greater", row_ink, g.f32(0.0)), FLOAT)
    y0 = g.op("ArgMax", rows, axis=1, keepdims=1, select_last_index=0)
    y1 = g.op("Add", g.op("ArgMax", rows, axis=1, keepdims=1, select_last_index=1), g.i64(1))
    return g.op("Concat", x0, y0, x1, y1, axis=1, name=NUMBER_BOXES_NAME)


def least_ink_cuts(g, positions):
    """For each pair of neighbouring positions (input columns, float [K]), the column of least ink between them."""
    width = g.scalar(g.cast(g.op("Shape", "col_has_ink"), FLOAT))
    centres = g.row(g.op("Add", g.op("Range", g.f32(0.0), width, g.f32(1.0)), g.f32(0.5)))
    left, right = g.column(g.slice(positions, 0, -1)), g.column(g.slice(positions, 1, 2 ** 62))
    between = g.op("And", g.op("GreaterOrEqual", centres, left), g.op("Less", centres, right))
    penalty = g.op("Mul", g.cast(g.op("Not", between), FLOAT), g.f32(float(FAR)))
    column_ink = g.row(g.op("ReduceSum", "ink", g.i64(0), keepdims=0))
    return g.op("ArgMin", g.op("Add", column_ink, penalty), axis=1, keepdims=0)


def middle_cuts(g, starts, ends):
    """For each column range, its column of least ink between 30% and 70% of its width."""
    width = g.scalar(g.op("Shape", "col_has_ink"))
    columns = g.row(g.cast(g.op("Range", g.const(0, np.int64), width, g.const(1, np.int64)), FLOAT))
    starts_f, ends_f = g.cast(starts, FLOAT), g.cast(ends, FLOAT)
    span = g.op("Sub", ends_f, starts_f)
    low = g.column(g.op("Add", starts_f, g.op("Mul", span, g.f32(0.3))))
    high = g.column(g.op("Add", starts_f, g.op("Mul", span, g.f32(0.7))))
    inside = g.op("And", g.op("GreaterOrEqual", columns, low), g.op("Less", columns, high))
    penalty = g.op("Mul", g.cast(g.op("Not", inside), FLOAT), g.f32(float(FAR)))
    column_ink = g.row(g.op("ReduceSum", "ink", g.i64(0), keepdims=0))
    cuts = g.op("ArgMin", g.op("Add", column_ink, penalty), axis=1, keepdims=0)
    # Each half keeps at least one column, however narrow the range.
    return g.op("Min", g.op("Max", cuts, g.op("Add", starts, g.i64(1))), g.op("Sub", ends, g.i64(1)))


def counts_per_piece(g, owners, piece_count):
    """How many of `owners` (piece indices [K]) fall on each of the pieces: int64 [P]."""
    pieces = g.row(g.op("Range", g.const(0, np.int64), g.scalar(piece_count), g.const(1, np.int64)))
    owned = g.cast(g.op("Equal", g.column(owners), pieces), INT64)
    # A zero row keeps the sum well defined when CTC read nothing.
    zeros = g.op("Expand", g.i64(0), g.op("Concat", g.i64(1), piece_count, axis=0))
    return g.op("ReduceSum", g.op("Concat", owned, zeros, axis=0), g.i64(0), keepdims=0)


def owner_pieces(g, positions, starts, ends):
    """The piece under each position (input columns): pieces meet halfway across their gaps."""
    gap_middles = g.op("Div", g.cast(g.op("Add", g.slice(ends, 0, -1), g.slice(starts, 1, 2 ** 62)), FLOAT), g.f32(2.0))
    cuts = g.op("Concat", gap_middles, g.f32([float(FAR)]), axis=0)
    return g.sum_where(g.op("GreaterOrEqual", g.column(positions), g.row(cuts)), axis=1)


def any_true(g, mask):
    """[N] bool -> [1] bool: whether any is true (false when empty)."""
    padded = g.op("Concat", g.cast(mask, INT64), g.i64(0), axis=0)
    return g.op("Greater", g.op("ReduceMax", padded, keepdims=1), g.i64(0))


def decode_nodes(frames_name, digit_reader, not_number_at_least, sure_at_least):
    """Nodes (with a Loop holding `digit_reader`) from the frames and the normalisation's leftovers to every output."""
    g = GraphBuilder("decode/")
    frames, runs, digit_runs, _, ctc_digits, ctc_probabilities, ctc_confidences = greedy_ctc(g, frames_name)
    frame_x = frame_columns(g, frames)
    ctc_x = run_centres(g, frame_x, runs, digit_runs)

    starts, ends, nothing, line_height = ink_pieces(g)
    piece_count = g.length(starts)
    pair_starts, pair_ends = g.slice(starts, 0, -1), g.slice(ends, 1, 2 ** 62)

    owners = owner_pieces(g, ctc_x, starts, ends)
    ctc_per_piece = counts_per_piece(g, owners, piece_count)
    ctc_per_pair = g.op("Add", g.slice(ctc_per_piece, 0, -1), g.slice(ctc_per_piece, 1, 2 ** 62))

    # A wide piece may be two digits that touch: it is also read as two halves, cut at its column of least ink
    # in its middle part, in case CTC misses one of them.
    wide = g.op("GreaterOrEqual", g.cast(g.op("Sub", ends, starts), FLOAT), g.op("Mul", line_height, g.f32(WIDE_SHARE)))
    splittable = g.op("And", g.op("GreaterOrEqual", g.op("Sub", ends, starts), g.i64(MIN_SPLIT_WIDTH)), g.op("Not", nothing))
    wide_pieces = g.op("Reshape", g.op("NonZero", g.op("And", wide, splittable)), g.i64(-1))
    wide_starts, wide_ends = g.gather(starts, wide_pieces), g.gather(ends, wide_pieces)
    splits = middle_cuts(g, wide_starts, wide_ends)

    # The digit reader reads each piece, each two neighbouring pieces together where CTC sees at most one digit
    # over both (the only pairs that may merge), and each wide piece's halves: a number written cleanly costs one
    # read per digit.
    candidates = g.op("Reshape", g.op("NonZero", g.op("LessOrEqual", ctc_per_pair, g.i64(1))), g.i64(-1))
    groups = [(starts, ends), (g.gather(pair_starts, candidates), g.gather(pair_ends, candidates)),
              (wide_starts, splits), (splits, wide_ends)]
    segment_starts = g.op("Concat", *[group[0] for group in groups], axis=0)
    segment_ends = g.op("Concat", *[group[1] for group in groups], axis=0)
    offsets = [g.i64(0)]
    for group in groups:
        offsets.append(g.op("Add", offsets[-1], g.length(group[0])))
    body = piece_reader_body(digit_reader, segment_starts, segment_ends)
    segment_count = g.scalar(g.length(segment_starts))
    read = g.op("Loop", segment_count, g.const(True, np.bool_), outputs=3, body=body)
    segment_probabilities = g.op("Reshape", read[0], g.i64(-1, NUM_DIGITS))
    segment_not_digit = g.op("Reshape", read[1], g.i64(-1))
    segment_verdict = g.op("Reshape", read[2], g.i64(-1))
    segment_digits = g.op("ArgMax", segment_probabilities, axis=1, keepdims=0)
    # A piece's confidence is its top digit's share of all eleven classes, as CTC's is of all frame classes.
    segment_confidences = g.op("Mul", g.op("ReduceMax", segment_probabilities, g.i64(1), keepdims=0),
                               g.op("Sub", g.f32(1.0), segment_not_digit))
    segment_is_digit = g.op("Equal", segment_verdict, g.i64(VERDICTS.index("digit")))
    segment_is_unsure = g.op("Equal", segment_verdict, g.i64(VERDICTS.index("unsure")))

    def group(value, index):
        return g.op("Slice", value, offsets[index], offsets[index + 1])

    def singles(value):
        return group(value, 0)

    def spread(value, default, index, count, where):
        """One group's readings spread back over `count` slots at `where` (`default` elsewhere)."""
        read_values = group(value, index)
        shape = g.op("Concat", count, g.op("Shape", read_values, start=1), axis=0)
        return g.op("ScatterND", g.op("Expand", default, shape), g.column(where), read_values)

    def pairs(value, default):
        """The candidate pairs' readings, spread back over every pair (`default` where a pair was not read)."""
        return spread(value, default, 1, g.length(pair_starts), candidates)

    # Two pieces are one digit when they read as one together and CTC sees no more than one digit there.
    pair_confidences = pairs(segment_confidences, g.f32(0.0))
    merge = g.op("And", pairs(segment_is_digit, g.const(False, np.bool_)), g.op("And", g.op("LessOrEqual", ctc_per_pair, g.i64(1)),
                                                     g.op("GreaterOrEqual", pair_confidences, g.f32(MERGE_SURE_AT_LEAST))))
    no, low = g.const([False], np.bool_), g.f32([-1.0])
    # Of two overlapping merges, the surer one wins; any merge left touching the one before it yields.
    beaten_left = g.op("And", g.shifted_right(merge, no),
                       g.op("GreaterOrEqual", g.shifted_right(pair_confidences, low), pair_confidences))
    beaten_right = g.op("And", g.shifted_left(merge, no), g.op("Greater", g.shifted_left(pair_confidences, low), pair_confidences))
    merged = g.op("And", merge, g.op("Not", g.op("Or", beaten_left, beaten_right)))
    merged = g.op("And", merged, g.op("Not", g.shifted_right(merged, no)))
    merged = g.op("And", merged, g.op("Not", nothing))
    covered = g.op("Or", g.op("Concat", merged, no, axis=0), g.op("Concat", no, merged, axis=0))

    free = g.op("And", g.op("Not", covered), g.op("Not", nothing))
    halves_are_digits = g.op("And", group(segment_is_digit, 2), group(segment_is_digit, 3))
    halves_are_digits = g.op("ScatterND", g.op("Expand", g.const(False, np.bool_), piece_count), g.column(wide_pieces), halves_are_digits)
    # The digit reader's digit stands unless CTC reads two or more digits in the piece and its halves read as
    # digits too (two digits that touch can look like one wide digit).
    touching = g.op("And", halves_are_digits, g.op("GreaterOrEqual", ctc_per_piece, g.i64(2)))
    use_reader = g.op("And", free, g.op("And", singles(segment_is_digit), g.op("Not", touching)))
    rest = g.op("And", free, g.op("Not", use_reader))
    # A wide piece that is no digit, whose halves both are, is two digits (unless CTC reads two or more in it).
    use_halves = g.op("And", rest, g.op("And", halves_are_digits, g.op("LessOrEqual", ctc_per_piece, g.i64(1))))
    rest = g.op("And", rest, g.op("Not", use_halves))
    use_ctc = g.op("And", rest, g.op("GreaterOrEqual", ctc_per_piece, g.i64(1)))
    rest = g.op("And", rest, g.op("Not", use_ctc))
    doubtful = g.op("And", rest, singles(segment_is_unsure))
    unexplained = g.op("And", rest, g.op("Not", doubtful))

    # Every digit read: the pieces', the merged pairs', and CTC's in the pieces left to it.
    column_f = lambda value: g.cast(value, FLOAT)
    middle = lambda left, right: g.op("Div", g.op("Add", column_f(left), column_f(right)), g.f32(2.0))
    ctc_cuts = least_ink_cuts(g, ctc_x)
    ctc_count = g.length(ctc_x)
    same_as_previous = g.op("Equal", owners, g.shifted_right(owners, g.i64(-1)))
    same_as_next = g.op("Equal", owners, g.shifted_left(owners, g.i64(-1)))
    cut_before = g.op("Slice", g.op("Concat", g.i64(0), ctc_cuts, axis=0), g.i64(0), ctc_count)
    cut_after = g.op("Slice", g.op("Concat", ctc_cuts, g.i64(0), axis=0), g.i64(0), ctc_count)
    ctc_starts = g.where(same_as_previous, cut_before, g.gather(starts, owners))
    ctc_ends = g.where(same_as_next, cut_after, g.gather(ends, owners))
    no_doubt = lambda value: g.op("Expand", no, g.length(value))

    sources = [
        # (keep, position, digit, probabilities, confidence, box start, box end, doubtful)
        # A piece nothing explains still shows the digit reader's best guess, as a doubt, never a silent gap.
        (g.op("Or", use_reader, rest), middle(starts, ends), singles(segment_digits), singles(segment_probabilities),
         singles(segment_confidences), starts, ends, rest),
        (merged, middle(pair_starts, pair_ends), pairs(segment_digits, g.const(0, np.int64)),
         pairs(segment_probabilities, g.f32(0.0)), pair_confidences,
         pair_starts, pair_ends, no_doubt(pair_starts)),
        (g.gather(use_ctc, owners), ctc_x, ctc_digits, ctc_probabilities, ctc_confidences, ctc_starts, ctc_ends,
         no_doubt(ctc_x)),
    ]
    halves_used = g.gather(use_halves, wide_pieces)
    for index, (left, right) in ((2, (wide_starts, splits)), (3, (splits, wide_ends))):
        sources.append((halves_used, middle(left, right), group(segment_digits, index), group(segment_probabilities, index),
                        group(segment_confidences, index), left, right, no_doubt(left)))
    columns = [g.op("Concat", *[source[field] for source in sources], axis=0) for field in range(8)]
    keep = columns[0]
    position, digits, probabilities, confidences, box_starts, box_ends, doubt = [g.compress(column, keep) for column in columns[1:]]
    order = g.op("TopK", position, g.length(position), axis=0, largest=0, sorted=1, outputs=2)[1]
    in_order = lambda value, name=None: g.op("Gather", value, order, axis=0, name=name)
    in_order(digits, NUMBER_DIGITS_NAME)
    in_order(probabilities, NUMBER_PROBABILITIES_NAME)
    confidences = in_order(confidences, NUMBER_CONFIDENCES_NAME)
    # In doubt: a guess for ink no digit reading explains, or a digit read with too little confidence.
    doubt = g.op("Or", in_order(doubt), g.op("Less", confidences, g.f32([sure_at_least])), name=NUMBER_DOUBTFUL_NAME)
    ink_boxes(g, in_order(box_starts), in_order(box_ends))

    # The whole number: the product of its digits' confidences; 0 when nothing was read.
    read_any = g.op("Greater", g.length(confidences), g.i64(0))
    with_one = g.op("Concat", confidences, g.f32([1.0]), axis=0)
    g.op("Mul", g.op("ReduceProd", with_one, keepdims=1), g.cast(read_any, FLOAT), name=NUMBER_CONFIDENCE_NAME)
    # "Not a digit" counts where CTC speaks for the ink: its pieces and the unexplained ones.
    ctc_speaks = g.op("And", g.gather(g.op("Or", use_ctc, unexplained), owner_pieces(g, frame_x, starts, ends)),
                      g.op("Not", nothing))
    other = g.op("Mul", g.op("Reshape", g.slice(frames, NOT_DIGIT_CLASS, NOT_DIGIT_CLASS + 1, axis=1), g.i64(-1)),
                 g.cast(ctc_speaks, FLOAT))
    g.op("ReduceMax", g.op("Concat", other, g.f32([0.0]), axis=0), keepdims=1, name=NOT_NUMBER_NAME)
    # Verdict: nothing read or something that is no digit -> not_number; ink unexplained or a doubtful digit -> unsure.
    explained_any = any_true(g, g.op("Or", g.op("Or", use_reader, use_ctc), g.op("Or", doubtful, use_halves)))
    explained_any = g.op("Or", explained_any, any_true(g, merged))
    is_not_number = g.op("Or", g.op("Not", explained_any), g.op("GreaterOrEqual", NOT_NUMBER_NAME, g.f32([not_number_at_least])))
    is_unsure = any_true(g, doubt)
    verdict = lambda name: g.i64(NUMBER_VERDICTS.index(name))
    g.op("Where", is_not_number, verdict("not_number"), g.where(is_unsure, verdict("unsure"), verdict("number")),
         name=NUMBER_VERDICT_NAME)
    return g.nodes, g.initializers
