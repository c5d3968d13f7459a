"""TF-free inference server: the committed ONNX model over HTTP, and the kiosk page.

    python -m serve                  # waitress on http://127.0.0.1:5000 (HOST/PORT or --host/--port), a process per core
    python -m serve.front            # the same behind nginx (make front)
    python -m serve.predict IMG...   # the same model on files, no server

create_app() lives in serve.app; this package never imports TensorFlow, train/ or convert/.
"""
