"""The peer server, done the seed app's way: Flask, Pillow decode, naive 28x28 resize, Keras `model.predict`.

    python -m bench.peer_server [--port 0] [--threads 4] [--model PATH]

It answers `POST /predict` with a PNG body, as ours does, and runs under the same WSGI server (waitress,
same thread count) so that a comparison measures the model stack, not the HTTP server. The model is the
very Keras classifier our ONNX files were converted from (manifest `references.keras`), one copy per thread.
"""

import argparse
import io
import os
import queue
import sys

import numpy as np


def create_peer_app(model_path, side, threads):
    import keras
    from flask import Flask, jsonify, request
    from PIL import Image

    from convert.evaluate import naive_resize

    # One model per worker thread: concurrent model.predict calls on one shared Keras model once
    # aborted TensorFlow here ("Mutex corrupt: both reader and writer lock held").
    models = queue.Queue()
    for _ in range(threads):
        models.put(keras.models.load_model(model_path))
    app = Flask(__name__)

    @app.post("/predict")
    def predict():
        image = np.asarray(Image.open(io.BytesIO(request.get_data())).convert("L"), np.float32) / 255.0
        digits = naive_resize(image[None], side)[..., None]
        model = models.get()
        try:
            probabilities = model.predict(digits, verbose=0)[0]
        finally:
            models.put(model)
        best = int(np.argmax(probabilities))
        return jsonify(digit=best, confidence=float(probabilities[best]), probabilities=probabilities.tolist())

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app


def main(argv=None):
    from waitress import create_server

    from bench.models import keras_reference_path, load_manifest
    from bench.report import DEFAULT_ARTIFACTS_DIR
    from serve.server import DEFAULT_THREADS

    parser = argparse.ArgumentParser(prog="python -m bench.peer_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default %(default)s)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="waitress threads (default: as ours, %(default)s)")
    parser.add_argument("--artifacts", default=str(DEFAULT_ARTIFACTS_DIR), help="where manifest.json names the Keras model")
    parser.add_argument("--model", help="a Keras model file (default: the manifest's references.keras)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    manifest = load_manifest(args.artifacts)
    app = create_peer_app(args.model or keras_reference_path(args.artifacts, manifest), manifest["normalization"]["canvas_size"],
                          args.threads)
    server = create_server(app, host=args.host, port=args.port, threads=args.threads, ident="")
    print(f"peer: Flask + Keras on http://{server.effective_host}:{server.effective_port}", file=sys.stderr, flush=True)
    server.run()


if __name__ == "__main__":
    main()
