"""The store of visitors' corrections: one room that serve (writes, python -m serve) and train (reads,
python -m train --feedback) both import, and that imports neither.

- feedback.entry: an entry and the words of its fields;
- feedback.store: the schema, its migrations, review, bounds and per-client buckets, written once for
  feedback.sqlite_store (one file) and feedback.postgres_store (a fleet's database);
- feedback.images: a stored drawing as the reader sees it.
"""
