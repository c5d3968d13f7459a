"""Accuracy: MNIST test through the shipped readers, the seed app's CNN for reference, and handwriting that is not MNIST.

    python -m bench.accuracy [--quick]

"Not MNIST" is the UCI handwritten digits set that ships with scikit-learn (1,797 digits, 8x8, other
writers, other scanning): once through the reader (with the in-model normalisation) and once stretched
to 28x28 into the bare classifier (the seed app's preprocessing, without it).
"""

import numpy as np

from bench.models import (extract_classifier, load_keras, load_manifest, mnist_test, open_session, reader_path,
                          seed_model_path)
from bench.report import Section, Target, run_section, script_command, table

ACCURACY_TARGETS = {"fp32": 0.9955, "int8": 0.995}  # issue 9
QUICK_DIGITS = 500


def read_all(session, manifest, images):
    """Run the reader on each image; returns probabilities [N, 10] and the normalised digits [N, 28, 28]."""
    input_name = manifest["input"]["name"]
    outputs = [manifest["outputs"]["probabilities"]["name"], manifest["outputs"]["normalized"]["name"]]
    results = [session.run(outputs, {input_name: np.ascontiguousarray(image, np.float32)}) for image in images]
    return np.stack([result[0] for result in results]), np.stack([result[1] for result in results])


def classify(session, digits):
    """The bare classifier's ten digit classes on digits [N, 28, 28] (already 28x28)."""
    input_name = session.get_inputs()[0].name
    return session.run(None, {input_name: np.ascontiguousarray(digits[..., None], np.float32)})[0][:, :10]


def accuracy(probabilities, labels):
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def measure(args):
    from convert.evaluate import load_uci_digits, naive_resize

    manifest = load_manifest(args.artifacts)
    side = manifest["normalization"]["canvas_size"]
    limit = QUICK_DIGITS if args.quick else None
    images, labels = mnist_test(limit)
    uci_images, uci_labels = load_uci_digits()
    uci_images, uci_labels = uci_images[:limit], uci_labels[:limit]
    uci_stretched = naive_resize(uci_images, side)

    rows, targets, normalized_mnist, normalized_uci = [], [], None, None
    for variant in manifest["variants"]:
        path = reader_path(args.artifacts, manifest, variant)
        reader = open_session(path)
        mnist_probabilities, mnist_normalized = read_all(reader, manifest, images)
        uci_probabilities, uci_normalized = read_all(reader, manifest, uci_images)
        if variant == manifest["default_variant"]:
            normalized_mnist, normalized_uci = mnist_normalized, uci_normalized
        classifier = open_session(extract_classifier(path))
        mnist_accuracy = accuracy(mnist_probabilities, labels)
        rows.append([f"ours {variant}, reader `{path.name}`", "in-model normalisation (crop, 20×20 box, centre of mass)",
                     f"{mnist_accuracy:.4f}", f"{accuracy(uci_probabilities, uci_labels):.4f}",
                     "`session.run` on each image [H, W]"])
        rows.append([f"ours {variant}, bare classifier cut from it", "none: image stretched to 28×28 (seed app's way)",
                     f"{accuracy(classify(classifier, images), labels):.4f}",
                     f"{accuracy(classify(classifier, uci_stretched), uci_labels):.4f}",
                     "`session.run` on [N, 28, 28, 1]"])
        if variant in ACCURACY_TARGETS:
            goal = ACCURACY_TARGETS[variant]
            targets.append(Target(f"MNIST test accuracy, {variant}", f"≥ {goal}", f"{mnist_accuracy:.4f}", mnist_accuracy >= goal,
                                  f"{len(labels):,} digits" + (" (quick run: a sample)" if args.quick else "")))

    seed_path, seed_summary, seed_command = seed_model_path(args.work_dir, args.quick)
    seed = load_keras(seed_path)
    predict = lambda digits: seed.predict(digits[..., None], batch_size=500, verbose=0)
    rows.append(["seed app's CNN (Keras), reference", "our normalisation (as it was trained)",
                 f"{accuracy(predict(normalized_mnist), labels):.4f}", f"{accuracy(predict(normalized_uci), uci_labels):.4f}",
                 "`model.predict` on the reader's `normalized` output"])
    rows.append(["seed app's CNN (Keras), reference", "none: image stretched to 28×28 (seed app's way)",
                 f"{accuracy(predict(images), labels):.4f}", f"{accuracy(predict(uci_stretched), uci_labels):.4f}",
                 "`model.predict` on [N, 28, 28, 1]"])

    config = seed_summary["config"]
    markdown = "\n\n".join([
        table(["Model", "Preprocessing", f"MNIST test ({len(labels):,})", f"UCI digits 8×8 ({len(uci_labels):,}, not MNIST)", "What runs"], rows),
        f"The seed reference CNN (Conv-Pool-Conv-Pool-Flatten-Dropout-Dense, {seed_summary['parameters']:,} weights) was "
        f"trained by `{seed_command}` ({config['epochs']} epochs on {seed_summary['train_digits']:,} digits, "
        f"recipe `{config.get('recipe', 'mnist')}`: MNIST as it is, no augmentation, the same optimiser and schedule as ours) "
        "and is cached under bench/out/.",
        f"The manifest records MNIST test accuracy fp32 {manifest['variants']['fp32']['accuracy'].get('mnist_test')}, "
        f"int8 {manifest['variants']['int8']['accuracy'].get('mnist_test')} for model `{manifest['model_id']}`.",
    ])
    return Section("Accuracy", script_command("bench.accuracy", args), markdown, targets)


if __name__ == "__main__":
    run_section("bench.accuracy", __doc__.splitlines()[0], measure)
