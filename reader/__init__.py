"""The digit reader's contract: tensor names, labels, verdicts, the pad's geometry and the normalisation graph.

train/, convert/, bench/ and tests/ import it; serve/ and web/ read the same facts from artifacts/manifest.json.
"""
