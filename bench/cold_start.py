"""One cold process: import a runtime, load a model, answer one digit; prints what each step cost as JSON.

    python -m bench.cold_start onnx|keras|tflite MODEL_PATH [PAD_SIDE]

The ONNX reader is given a PAD_SIDE x PAD_SIDE image (default 280); the classifiers a digit of the
shape their model declares.

Run as a fresh process by bench/footprint.py, so imports and memory are counted from nothing.
"""

import json
import os
import sys
import time


def resident_bytes():
    """(resident, peak resident) of this process, from /proc."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def load_onnx(path):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    side = int(sys.argv[3]) if len(sys.argv) > 3 else 280
    return (lambda image: session.run(None, {name: image})), (side, side)


def load_keras(path):
    import keras

    model = keras.models.load_model(path)
    return (lambda digits: model.predict(digits, verbose=0)), (1, *model.input_shape[1:])


def load_tflite(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    input_index, shape = interpreter.get_input_details()[0]["index"], interpreter.get_input_details()[0]["shape"]
    output_index = interpreter.get_output_details()[0]["index"]

    def predict(digits):
        interpreter.set_tensor(input_index, digits)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)

    return predict, tuple(shape)


RUNTIMES = {  # name -> (modules to import, loader returning (predict, input shape))
    "onnx": (["numpy", "onnxruntime"], load_onnx),
    "keras": (["numpy", "tensorflow", "keras"], load_keras),
    "tflite": (["numpy", "ai_edge_litert.interpreter"], load_tflite),
}


def main():
    runtime, path = sys.argv[1], sys.argv[2]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    modules, loader = RUNTIMES[runtime]
    started = time.perf_counter()
    for module in modules:
        __import__(module)
    imported = time.perf_counter()
    predict, shape = loader(path)
    loaded = time.perf_counter()
    import numpy as np

    image = np.zeros(shape, np.float32)
    rows, columns = (shape[0], shape[1]) if len(shape) == 2 else (shape[1], shape[2])
    # A vertical bar of ink, a "1" of sorts: something to read, not a blank.
    image.reshape(rows, columns)[rows // 5: 4 * rows // 5, 2 * columns // 5: 3 * columns // 5] = 1.0
    predict(image)
    answered = time.perf_counter()
    resident, peak = resident_bytes()
    print(json.dumps({"import_seconds": imported - started, "load_seconds": loaded - imported,
                      "first_answer_seconds": answered - loaded, "resident_bytes": resident, "peak_bytes": peak}))


if __name__ == "__main__":
    main()
