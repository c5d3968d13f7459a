"""Drawn digits and non-digits: the shipped readers, the candidates and the seed app's CNN, side by side.

    python -m bench.drawn [--quick] [--candidates DIR ...]

Digits come as the pad draws them (bench/drawn_sets.py: MNIST test digits and handwriting-font digits
redrawn with a round pen at several widths; letters, pairs of digits and doodles as non-digits), and
every reader reads the very same pad images. The seed app's CNN reads each drawing as our normalisation
leaves it (the reader's `normalized` output); having no "not a digit", it is credited with turning a
drawing away when its confidence is under 0.6, the old page's "not sure" line. A reader without a verdict
output (an older model) is judged by that same line.
"""

import json
from pathlib import Path

import numpy as np

from bench.drawn_sets import PEN_WIDTHS, doodles, font_sets, mnist_redrawn, side_by_side
from bench.models import load_keras, load_manifest, mnist_test, open_session, reader_path, seed_model_path
from bench.report import ROOT, Section, Target, run_section, script_command, table
from reader.contract import PAD_PEN_WIDTH

DRAWN_DIGITS = 2000
QUICK_DIGITS = 60
OLD_UNSURE_BELOW = 0.6
TARGET_NON_DIGITS_TURNED_AWAY = 0.90   # issue 9
TARGET_DIGITS_REFUSED = 0.02
CONFUSION_PICTURE = ROOT / "bench" / "drawn-confusion.png"
DEFAULT_CANDIDATES = ROOT / "build" / "candidates"  # where the candidates' training runs leave them (not committed)


class Reader:
    """One ONNX reader, run on pad images; keeps its answers per evaluation set."""

    def __init__(self, name, path, manifest):
        self.name, self.path, self.manifest = name, path, manifest
        self.session = open_session(path)
        names = {output.name for output in self.session.get_outputs()}
        outputs = manifest["outputs"]
        self.verdict_name = outputs.get("verdict", {}).get("name") if outputs.get("verdict", {}).get("name") in names else None
        self.verdicts = outputs.get("verdict", {}).get("values")
        self.fetch = [outputs["probabilities"]["name"], outputs["normalized"]["name"]] + ([self.verdict_name] if self.verdict_name else [])
        self.answers = {}

    def read(self, set_name, image):
        result = self.session.run(self.fetch, {self.manifest["input"]["name"]: np.ascontiguousarray(image, np.float32)})
        probabilities = result[0]
        if self.verdict_name:
            said_digit = self.verdicts[int(result[2][0])] == "digit"
        else:
            said_digit = float(probabilities.max()) >= OLD_UNSURE_BELOW
        self.answers.setdefault(set_name, []).append((int(probabilities.argmax()), said_digit))
        return result[1]

    def predictions(self, set_name):
        return np.array([answer[0] for answer in self.answers[set_name]])

    def said_digit(self, set_name):
        return np.array([answer[1] for answer in self.answers[set_name]])


def candidate_readers(directories):
    """Every converted candidate under the given folders (each a folder with manifest.json)."""
    readers = []
    for directory in directories:
        for manifest_path in sorted(Path(directory).glob("*/artifacts/manifest.json")):
            manifest = json.loads(manifest_path.read_text())
            variant = manifest.get("default_variant", "fp32")
            readers.append(Reader(f"candidate {manifest_path.parent.parent.name}", manifest_path.parent / manifest["variants"][variant]["file"], manifest))
    return readers


def evaluate(readers, seed, quick):
    """Run every reader (and the seed CNN on the first reader's normalised digits) over every set; returns labels per set."""
    rng = np.random.default_rng(5)
    images, labels = mnist_test()
    count = QUICK_DIGITS if quick else DRAWN_DIGITS
    chosen = np.sort(rng.choice(len(labels), size=count, replace=False))
    uint8 = np.round(images[chosen] * 255).astype(np.uint8)
    truth = {}
    normalized = {}

    def read_all(set_name, image):
        for index, reader in enumerate(readers):
            seen = reader.read(set_name, image)
            if index == 0:
                normalized.setdefault(set_name, []).append(seen)

    for drawn in mnist_redrawn(uint8):
        for width, image in zip(PEN_WIDTHS, drawn):
            read_all(f"mnist@{width}", image)
    for width in PEN_WIDTHS:
        truth[f"mnist@{width}"] = labels[chosen]
    font_digits, font_labels, letters, _ = font_sets()
    if quick:
        font_digits, font_labels, letters = font_digits[:20], font_labels[:20], letters[:20]
    for drawn in font_digits:
        for width, image in zip(PEN_WIDTHS, drawn):
            read_all(f"fonts@{width}", image)
    for width in PEN_WIDTHS:
        truth[f"fonts@{width}"] = font_labels
    pad_width = PEN_WIDTHS.index(PAD_PEN_WIDTH)
    for drawn in letters:
        read_all("letters", drawn[pad_width])
    pairs = rng.integers(len(labels), size=(max(4, count // 4), 2))
    for first, second in pairs:
        read_all("pairs", side_by_side(np.round(images[first] * 255).astype(np.uint8), np.round(images[second] * 255).astype(np.uint8)))
    doodle_images, _ = doodles(26 if quick else 130)
    for image in doodle_images:
        read_all("doodles", image)

    seed_answers = {}
    for set_name, digits in normalized.items():
        probabilities = seed.predict(np.stack(digits)[..., None], batch_size=500, verbose=0)
        seed_answers[set_name] = (probabilities.argmax(1), probabilities.max(1) >= OLD_UNSURE_BELOW)
    return truth, seed_answers


def confusion_picture(reader, truth, path):
    """The reader's confusion matrix over every drawn digit at every width, as a PNG heat map with counts."""
    from PIL import Image, ImageDraw

    matrix = np.zeros((10, 10), int)
    for set_name, labels in truth.items():
        for label, predicted in zip(labels, reader.predictions(set_name)):
            matrix[label, predicted] += 1
    cell, margin = 44, 64
    picture = Image.new("RGB", (margin + 10 * cell + 8, margin + 10 * cell + 8), "white")
    draw = ImageDraw.Draw(picture)
    shares = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    for row in range(10):
        draw.text((margin - 20, margin + row * cell + cell // 2 - 5), str(row), fill="black")
        draw.text((margin + row * cell + cell // 2 - 3, margin - 18), str(row), fill="black")
        for col in range(10):
            # Correct answers shade blue, mistakes red; the darker, the larger the share of that row.
            strength = 0.45 * shares[row, col] if row == col else min(1.0, 8 * shares[row, col])  # counts stay legible
            tone = int(255 * (1 - strength))
            colour = (tone, tone, 255) if row == col else (255, tone, tone)
            box = (margin + col * cell, margin + row * cell, margin + (col + 1) * cell - 1, margin + (row + 1) * cell - 1)
            draw.rectangle(box, fill=colour)
            if matrix[row, col]:
                draw.text((box[0] + 4, box[1] + cell // 2 - 5), str(matrix[row, col]), fill="black")
    draw.text((4, 4), f"{reader.name}: true digit (rows) vs answer (columns), all drawn digits", fill="black")
    picture.save(path)


def accuracy(predictions, labels):
    return float(np.mean(predictions == labels))


def measure(args):
    manifest = load_manifest(args.artifacts)
    readers = [Reader(f"ours {variant}", reader_path(args.artifacts, manifest, variant), manifest) for variant in manifest["variants"]]
    shipped_files = {entry["sha256"] for entry in manifest["variants"].values()}
    # The shipped model is one of the candidates; a quick run reads only the shipped files.
    readers += [reader for reader in candidate_readers([] if args.quick else args.candidates)
                if reader.manifest["variants"][reader.manifest.get("default_variant", "fp32")]["sha256"] not in shipped_files]
    seed_path, seed_summary, seed_command = seed_model_path(args.work_dir, args.quick)
    truth, seed = evaluate(readers, load_keras(seed_path), args.quick)

    widths = [f"{width}" + (" (the pad's)" if width == PAD_PEN_WIDTH else "") for width in PEN_WIDTHS]
    digit_sets = {width: [f"mnist@{width}", f"fonts@{width}"] for width in PEN_WIDTHS}
    non_digit_sets = ["letters", "pairs", "doodles"]

    def per_width(predict):
        return [float(np.mean(np.concatenate([predict(name) == truth[name] for name in digit_sets[width]]))) for width in PEN_WIDTHS]

    rows, scores = [], {}
    for reader in readers:
        scores[reader.name] = per_width(reader.predictions)
        rows.append([reader.name, *[f"{value:.4f}" for value in scores[reader.name]], f"{np.mean(scores[reader.name]):.4f}"])
    scores["seed"] = per_width(lambda name: seed[name][0])
    rows.append(["seed app's CNN (on our normalisation)", *[f"{value:.4f}" for value in scores["seed"]], f"{np.mean(scores['seed']):.4f}"])

    by_source = []
    for reader in readers:
        by_source.append([reader.name, *[f"{accuracy(reader.predictions(f'{source}@{PAD_PEN_WIDTH}'), truth[f'{source}@{PAD_PEN_WIDTH}']):.4f}"
                                         for source in ("mnist", "fonts")]])
    by_source.append(["seed app's CNN", *[f"{accuracy(seed[f'{source}@{PAD_PEN_WIDTH}'][0], truth[f'{source}@{PAD_PEN_WIDTH}']):.4f}" for source in ("mnist", "fonts")]])

    shipped = readers[0]
    per_digit = []
    pad_sets = digit_sets[PAD_PEN_WIDTH]
    pad_truth = np.concatenate([truth[name] for name in pad_sets])
    pad_ours = np.concatenate([shipped.predictions(name) for name in pad_sets])
    pad_seed = np.concatenate([seed[name][0] for name in pad_sets])
    for digit in range(10):
        chosen = pad_truth == digit
        wrong = np.bincount(pad_ours[chosen & (pad_ours != digit)], minlength=10)
        per_digit.append([str(digit), str(int(chosen.sum())), f"{accuracy(pad_ours[chosen], digit):.4f}", f"{accuracy(pad_seed[chosen], digit):.4f}",
                          ", ".join(f"{other} ×{wrong[other]}" for other in np.argsort(-wrong)[:2] if wrong[other]) or "—"])

    rejection_rows, rejection = [], {}
    for reader in readers:
        turned = [float(np.mean(~reader.said_digit(name))) for name in non_digit_sets]
        everything = np.concatenate([~reader.said_digit(name) for name in non_digit_sets])
        refused = np.concatenate([~reader.said_digit(name) for width in PEN_WIDTHS for name in digit_sets[width]])
        rejection[reader.name] = (float(everything.mean()), float(refused.mean()))
        rejection_rows.append([reader.name, *[f"{value:.3f}" for value in turned], f"{everything.mean():.3f}", f"{refused.mean():.3f}"])
    seed_turned = [float(np.mean(~seed[name][1])) for name in non_digit_sets]
    seed_everything = np.concatenate([~seed[name][1] for name in non_digit_sets]).mean()
    seed_refused = np.concatenate([~seed[name][1] for width in PEN_WIDTHS for name in digit_sets[width]]).mean()
    rejection_rows.append(["seed app's CNN (confidence < 0.6)", *[f"{value:.3f}" for value in seed_turned], f"{seed_everything:.3f}", f"{seed_refused:.3f}"])

    if not args.quick:
        confusion_picture(shipped, {name: truth[name] for sets in digit_sets.values() for name in sets}, CONFUSION_PICTURE)

    counts = {name: len(answers) for name, answers in shipped.answers.items()}
    ours, base = scores[shipped.name], scores["seed"]
    quick_note = " (quick run: a sample)" if args.quick else ""
    targets = [
        Target("drawn digits: ours ≥ seed CNN at every pen width", "every width", ", ".join(f"{o:.3f} vs {s:.3f}" for o, s in zip(ours, base)),
               bool(all(o >= s for o, s in zip(ours, base))), f"{shipped.name}; widths {', '.join(map(str, PEN_WIDTHS))}{quick_note}"),
        Target("drawn digits: ours ≥ seed CNN + 1 point on average", f"≥ {np.mean(base) + 0.01:.4f}", f"{np.mean(ours):.4f}",
               bool(np.mean(ours) >= np.mean(base) + 0.01), f"seed {np.mean(base):.4f}{quick_note}"),
        Target("non-digits not answered \"digit\"", f"≥ {TARGET_NON_DIGITS_TURNED_AWAY:.0%}", f"{rejection[shipped.name][0]:.1%}",
               bool(rejection[shipped.name][0] >= TARGET_NON_DIGITS_TURNED_AWAY), f"letters, pairs and doodles{quick_note}"),
        Target("drawn digits answered anything but \"digit\"", f"≤ {TARGET_DIGITS_REFUSED:.0%}", f"{rejection[shipped.name][1]:.1%}",
               bool(rejection[shipped.name][1] <= TARGET_DIGITS_REFUSED), f"all widths{quick_note}"),
    ]
    markdown = "\n\n".join([
        f"Pad images of {PEN_WIDTHS[0]}–{PEN_WIDTHS[-1]} pen widths (fractions of the 280-pixel pad). Per width: "
        f"{counts[f'mnist@{PAD_PEN_WIDTH}']:,} MNIST test digits redrawn with the pad's pen and {counts[f'fonts@{PAD_PEN_WIDTH}']:,} handwriting-font digits.",
        table(["Reader", *[f"pen {width}" for width in widths], "mean"], rows),
        "At the pad's own width, by source:",
        table(["Reader", "MNIST test, redrawn", "handwriting fonts"], by_source),
        f"Per digit at the pad's width, {shipped.name} against the seed CNN, with its commonest misreads:",
        table(["Digit", "drawings", "ours", "seed CNN", "ours misread it as"], per_digit),
        f"Non-digits turned away ({counts['letters']:,} letters and symbols from the fonts, {counts['pairs']:,} pairs of digits, "
        f"{counts['doodles']:,} doodles), and real digits refused at any width:",
        table(["Reader", "letters", "pairs", "doodles", "all non-digits", "digits refused"], rejection_rows),
        (f"The confusion matrix of {shipped.name} over every drawn digit: [bench/drawn-confusion.png](drawn-confusion.png)."
         if not args.quick else "The confusion picture is drawn by a full run only."),
        f"The seed reference CNN ({seed_summary['parameters']:,} weights) was trained by `{seed_command}`.",
    ])
    shown = [f"--candidates={path}" for path in args.candidates if path.resolve() != DEFAULT_CANDIDATES]
    return Section("Drawn digits", script_command("bench.drawn", args, shown),
                   markdown + pareto(readers, scores, rejection, args.artifacts), targets)


def pareto(readers, scores, rejection, artifacts_dir):
    """Every reader's cost against what it reads: the table behind the choice of the shipped model."""
    rows = []
    for reader in readers:
        manifest = reader.manifest
        variant = "int8" if reader.path.name.startswith("digits-int8") else "fp32"
        mnist = manifest["variants"].get(variant, {}).get("accuracy", {}).get("mnist_test", "—")
        multiply_adds = manifest.get("multiply_adds") or manifest.get("training", {}).get("multiply_adds")
        rows.append([reader.name, f"{multiply_adds / 1e6:.2f} M" if multiply_adds else "—", mnist,
                     *[f"{value:.4f}" for value in scores[reader.name]], f"{np.mean(scores[reader.name]):.4f}",
                     f"{rejection[reader.name][0]:.3f}", f"{rejection[reader.name][1]:.3f}"])
    if len(rows) < 3:
        return ""
    return "\n\n" + "\n\n".join([
        "### Candidates",
        "Every reader trained for this model, on the same drawings (build/candidates/ is not committed: "
        "`make train ARGS=\"--architecture NAME --output-dir build/candidates/NAME\"` and "
        "`make convert ARGS=\"--train-dir build/candidates/NAME --artifacts-dir build/candidates/NAME/artifacts\"` remake one). "
        "MNIST test is the manifest's, read once after training.",
        table(["Reader", "multiply-adds per digit", "MNIST test", *[f"pen {width}" for width in PEN_WIDTHS], "drawn mean",
               "non-digits turned away", "digits refused"], rows),
    ])


def add_arguments(parser):
    parser.add_argument("--candidates", nargs="*", type=Path, default=[path for path in [DEFAULT_CANDIDATES] if path.is_dir()],
                        help="folders holding candidates, each subfolder with artifacts/manifest.json (default: %(default)s, if it exists)")


if __name__ == "__main__":
    run_section("bench.drawn", __doc__.splitlines()[0], measure, add_arguments)
