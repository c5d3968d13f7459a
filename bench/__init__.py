"""Side-by-side benchmarks of our stack against its peers: `python -m bench` writes bench/RESULTS.md.

One script per question, each runnable alone (`python -m bench.NAME [--quick]`):
accuracy, latency (model runtimes), footprint (start-up, memory, install size), http (/predict under
load vs a Flask + Keras server), browser (the kiosk page in Chromium), soak (five minutes of load).
"""
