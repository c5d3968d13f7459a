/**
 * The classifier: the digit reader, or in number mode the number reader. It runs the very ONNX file the
 * server runs (named and hashed by the manifest) with onnxruntime-web in the page's inference worker
 * (inference-worker.js, one for all readers) so that nothing heavy ever runs on the page's thread. Until
 * that has started, or if it cannot start (no WebAssembly, no module workers, the runtime blocked or
 * broken), it asks the server instead (POST /predict, or POST /number), whose answers it gives in the same shape.
 */
import { RUNTIME, RUNTIME_FILES, inferenceWorker, listeners, markPhase, nextReaderId } from './inference.js';
import { readerOf } from './offline.js';

const SERVER_URLS = { digit: '/predict', number: '/number' };
const SERVER_RETRY_DELAYS_MS = [500, 1500];
const BYTE_MAX = 255; // PNG channels are bytes
// Until the manifest is known (a server answer on the very first load), a digit's label is its index.
const DIGIT_LABELS = [...'0123456789'];

/** A server answer that is not a prediction; `status` is the HTTP status, or 0 when the server is unreachable. */
export class ServerError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/**
 * Start the in-browser model in its worker. `onProgress(loaded, total)` follows the first download
 * (total is null when unknown); `onStateChange(state)` sees 'loading', then 'ready' or 'failed'.
 * `variant` picks a model variant of the manifest (bench/ compares them); by default the manifest's choice.
 * `mode` is 'digit' (the digit reader) or 'number' (the number reader, the manifest's "numbers").
 * `manifest`, the page's, gives the pad's size until the worker has read its own.
 */
export function createClassifier({ onProgress = () => {}, onStateChange = () => {}, variant = null, mode = 'digit', manifest: pageManifest = null } = {}) {
  let state = 'loading';
  let manifest = null;
  let reader = null;
  let variantRunning = null;
  const pending = new Map(); // run id -> {resolve, reject}
  let nextId = 0;
  const setState = (next) => onStateChange((state = next));

  let announceManifest;
  const manifestLoaded = new Promise((resolve) => (announceManifest = resolve));
  let settle;
  const started = new Promise((resolve, reject) => (settle = { resolve, reject }));

  const readerId = nextReaderId();
  let thread = null;
  try {
    thread = inferenceWorker();
  } catch (error) {
    settle.reject(error);
  }
  listeners.set(readerId, (message) => {
    if (message.type === 'progress') onProgress(message.loaded, message.total);
    if (message.type === 'mark') markPhase(message);
    if (message.type === 'model') {
      variantRunning = message.variant;
      reader = readerOf(message.manifest, mode);
      announceManifest((manifest = message.manifest));
    }
    if (message.type === 'ready') settle.resolve();
    if (message.type === 'failed') settle.reject(new Error(message.message));
    if (message.type === 'outputs' || message.type === 'error') {
      const run = pending.get(message.id);
      pending.delete(message.id);
      if (message.type === 'outputs') run?.resolve(message);
      else run?.reject(new Error(message.message));
    }
  });
  thread?.postMessage({ type: 'start', reader: readerId, mode, variant, runtime: RUNTIME });

  started.then(
    () => setState('ready'),
    (error) => {
      console.warn('in-browser model unavailable, asking the server instead:', error.message);
      listeners.delete(readerId);
      setState('failed');
    },
  );

  // The pixels are handed over, not copied: the page reads the pad afresh for every prediction.
  const runInWorker = (image) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    thread.postMessage({ type: 'run', reader: readerId, id, image }, [image.data.buffer]);
  });

  return {
    mode,
    /** The worker and runtime files, which the page keeps for offline starts. */
    runtimeFiles: RUNTIME_FILES,
    started,
    /** Resolves with the manifest once it is known (from the server, or the cache when offline). */
    manifestLoaded,
    get state() {
      return state;
    },
    get manifest() {
      return manifest;
    },
    /** The manifest's description of the reader this classifier runs (see readerOf). */
    get reader() {
      return reader;
    },
    /** The manifest variant the page runs, once the model has loaded. */
    get variant() {
      return variantRunning;
    },
    /** How to read the pad for the model (see inputFormat). */
    get inputFormat() {
      return inputFormat(manifest ?? pageManifest, mode);
    },
    /**
     * Classify `image` ({data, height, width}; its data is handed to the worker) in the page's worker when
     * the model is running there, else on the server. A digit resolves to {index, label, confidence,
     * probabilities, verdict, notDigit, normalized, backend, model, milliseconds}; a number to POST /number's
     * answer ({number, digits: [{digit, confidence, probabilities, box}], confidence, verdict, not_number,
     * model}) with labels, normalized, backend and milliseconds. `milliseconds` is the whole round trip, and
     * for the browser `modelMilliseconds` the run inside the worker.
     */
    async classify(image, { onRetry = () => {}, signal } = {}) {
      const inBrowser = () => runInBrowser(runInWorker, mode, reader, variantRunning, image);
      if (state === 'ready') return inBrowser();
      return askServer(image, mode, reader, { onRetry, signal, browserReady: () => (state === 'ready' ? inBrowser() : null) });
    },
  };
}

/**
 * How to read the pad for `manifest`'s reader of `mode`: the longest side of the mode's pad (the manifest's
 * "pad", from reader/contract.py), and the values of ink and background.
 */
export function inputFormat(manifest, mode = 'digit') {
  const input = readerOf(manifest, mode)?.input;
  const { width, height } = manifest.pad[mode];
  return { maxSide: Math.max(width, height), ink: input?.ink ?? 1, background: input?.background ?? 0 };
}

async function runInBrowser(runInWorker, mode, reader, variantRunning, image) {
  const started = performance.now();
  const { outputs, milliseconds } = await runInWorker(image);
  const output = (name) => outputs[reader.outputs[name].name];
  const [height, width] = output('normalized').dims;
  const page = {
    normalized: { data: output('normalized').data, height, width },
    backend: 'browser',
    // Named as the server names a variant it runs other than the default, so an answer says which file gave it.
    model: variantRunning && variantRunning !== reader.default_variant ? `${reader.model_id}-${variantRunning}` : reader.model_id,
    modelMilliseconds: milliseconds,
  };
  const verdict = reader.outputs.verdict.values[Number(output('verdict').data[0])];
  const answer = mode === 'number'
    ? { ...readNumber(output, reader), verdict, ...page }
    : describe(Array.from(output('probabilities').data), reader, { verdict, notDigit: output('not_digit').data[0], ...page });
  return { ...answer, milliseconds: performance.now() - started };
}

// The number reader's outputs as POST /number answers them.
function readNumber(output, reader) {
  const digits = Array.from(output('digits').data, Number);
  const probabilities = output('probabilities').data;
  const boxes = output('boxes').data;
  const width = reader.labels.length;
  return {
    number: digits.map((digit) => reader.labels[digit]).join(''),
    digits: digits.map((digit, position) => ({
      digit,
      confidence: output('confidences').data[position],
      doubtful: Boolean(output('doubtful').data[position]),
      probabilities: Array.from(probabilities.subarray(position * width, (position + 1) * width)),
      box: Array.from(boxes.subarray(position * 4, (position + 1) * 4), Number),
    })),
    confidence: output('confidence').data[0],
    not_number: output('not_number').data[0],
    labels: reader.labels,
  };
}

/** POST the image to the server, retrying briefly when it is unreachable or failing (5xx). */
async function askServer(image, mode, reader, { onRetry, signal, browserReady }) {
  const body = await toPng(image, reader?.input);
  for (let attempt = 0; ; attempt++) {
    const started = performance.now();
    try {
      const answer = await postImage(SERVER_URLS[mode], body, signal);
      const page = { normalized: null, backend: 'server', model: answer.model, milliseconds: performance.now() - started };
      if (mode === 'number') return { ...answer, labels: reader?.labels ?? DIGIT_LABELS, ...page };
      return describe(answer.probabilities, reader, { verdict: answer.verdict, notDigit: answer.not_digit, ...page });
    } catch (error) {
      const retryable = error instanceof ServerError && (error.status === 0 || error.status >= 500);
      if (!retryable || attempt >= SERVER_RETRY_DELAYS_MS.length || signal?.aborted) throw error;
      onRetry(error, SERVER_RETRY_DELAYS_MS[attempt]);
      await sleep(SERVER_RETRY_DELAYS_MS[attempt], signal);
      // The in-page model may have finished starting while the server was failing.
      const local = browserReady();
      if (local) return local;
    }
  }
}

async function postImage(url, body, signal) {
  let response;
  try {
    response = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'image/png' }, body, signal });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ServerError('the server cannot be reached', 0);
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ServerError(answer.error ?? `the server answered ${response.status}`, response.status);
  return answer;
}

function describe(probabilities, reader, extra) {
  const index = probabilities.indexOf(Math.max(...probabilities));
  const labels = reader?.labels ?? DIGIT_LABELS;
  return { index, label: labels[index], confidence: probabilities[index], probabilities, labels, ...extra };
}

/** The model input as a grayscale PNG, byte for byte the pixels the in-page model would be fed. */
export function toPng({ data, height, width }, { ink = 1, background = 0 } = {}) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d');
  const pixels = context.createImageData(width, height);
  for (let index = 0; index < data.length; index++) {
    const byte = Math.round((BYTE_MAX * (data[index] - background)) / (ink - background));
    pixels.data.set([byte, byte, byte, BYTE_MAX], 4 * index);
  }
  context.putImageData(pixels, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
}

function sleep(milliseconds, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, milliseconds);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
