/**
 * The classifier: the digit reader, or in number mode the number reader. It runs the very ONNX file the
 * server runs (named and hashed by the manifest) with onnxruntime-web inside the page; until that has
 * started, or if it cannot start (no WebAssembly, the runtime blocked or broken), it asks the server
 * instead (POST /predict, or POST /number), whose answers it gives in the same shape.
 */
import { combineProgress, download, hasOfflineCopy, loadModel, readerOf } from './offline.js';

// onnxruntime-web's wasm-only build, copied here by `make vendor` (never a CDN: the kiosk may be offline).
const RUNTIME_DIRECTORY = '/vendor/';
const RUNTIME_MODULE = `${RUNTIME_DIRECTORY}ort.wasm.min.mjs`;
const RUNTIME_FILES = [RUNTIME_MODULE, `${RUNTIME_DIRECTORY}ort-wasm-simd-threaded.mjs`, `${RUNTIME_DIRECTORY}ort-wasm-simd-threaded.wasm`];
const RUNTIME_WASM = RUNTIME_FILES[2];
const SERVER_URLS = { digit: '/predict', number: '/number' };
// Larger pads are scaled down first: the model only keeps a 20 px box, and 280 px holds every stroke; the
// number pad is three digit pads wide (reader/contract.py NUMBER_PAD_WIDTH), so it keeps 280 px of height.
const MAX_INPUT_SIDES = { digit: 280, number: 3 * 280 };
const SERVER_RETRY_DELAYS_MS = [500, 1500];
const WARM_UP_RUNS = 10;
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
 * Start loading the model and the runtime. `onProgress(loaded, total)` follows the first download
 * (total is null when unknown); `onStateChange(state)` sees 'loading', then 'ready' or 'failed'.
 * `variant` picks a model variant of the manifest (bench/ compares them); by default the manifest's choice.
 * `mode` is 'digit' (the digit reader) or 'number' (the number reader, the manifest's "numbers").
 */
export function createClassifier({ onProgress = () => {}, onStateChange = () => {}, variant = null, mode = 'digit' } = {}) {
  let state = 'loading';
  let manifest = null;
  let reader = null;
  let session = null;
  let variantRunning = null;
  const queue = createQueue();
  const setState = (next) => onStateChange((state = next));

  let announceManifest;
  const manifestLoaded = new Promise((resolve) => (announceManifest = resolve));

  const started = (async () => {
    const progress = combineProgress(onProgress);
    const modelLoaded = loadModel(progress.part('model'), variant, mode).then((model) => {
      performance.mark('classifier:model-loaded');
      variantRunning = model.variant;
      reader = readerOf(model.manifest, mode);
      announceManifest((manifest = model.manifest));
      return model;
    });
    if (typeof WebAssembly !== 'object') {
      await modelLoaded;
      throw new Error('this browser has no WebAssembly');
    }
    const [model, ort] = await Promise.all([modelLoaded, import(RUNTIME_MODULE), prefetchRuntime(progress.part('runtime'))]);
    ort.env.logLevel = 'error';
    ort.env.wasm.wasmPaths = RUNTIME_DIRECTORY;
    // Single-threaded wasm needs no cross-origin isolation headers (COOP/COEP, troublesome on iOS).
    ort.env.wasm.numThreads = 1;
    // A prediction takes a few milliseconds, well inside one frame, while the proxy worker's round trip
    // doubles that on a busy CPU; so the model runs on the page's thread, after a stroke, never during one.
    ort.env.wasm.proxy = false;
    const inference = await ort.InferenceSession.create(model.bytes);
    performance.mark('classifier:session-created');
    // The first run of a session sets up its buffers: do that now, not on someone's digit.
    const warmUp = { [reader.input.name]: warmUpImage(ort, mode) };
    await inference.run(warmUp);
    performance.mark('classifier:first-run');
    session = { ort, inference, warmUp, classified: false };
  })();
  started.then(
    () => {
      setState('ready');
      keepWarm(session, queue);
    },
    (error) => {
      console.warn('in-browser model unavailable, asking the server instead:', error.message);
      setState('failed');
    },
  );

  return {
    mode,
    /** The runtime's files, which the page keeps for offline starts. */
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
      return inputFormat(manifest, mode);
    },
    /**
     * Classify `image` ({data, height, width}) in the page when the model is running there, else on the
     * server. A digit resolves to {index, label, confidence, probabilities, verdict, notDigit, normalized,
     * backend, model, milliseconds}; a number to POST /number's answer ({number, digits: [{digit, confidence,
     * probabilities, box}], confidence, verdict, not_number, model}) with labels, normalized, backend and milliseconds.
     */
    async classify(image, { onRetry = () => {}, signal } = {}) {
      const inBrowser = () => runInBrowser(session, mode, reader, variantRunning, image, queue);
      if (state === 'ready') return inBrowser();
      return askServer(image, mode, reader, { onRetry, signal, browserReady: () => (state === 'ready' ? inBrowser() : null) });
    },
  };
}

// The browser compiles the wasm kernels a session uses with its optimising compiler only after a few
// runs (tens of ms each until then; after a reload its code cache may already hold them). Those runs go
// on once the model is ready, queued between people's predictions, and stop at the first real digit.
async function keepWarm(session, queue) {
  for (let run = 1; run < WARM_UP_RUNS && !session.classified; run++) {
    await new Promise((resolve) => setTimeout(resolve)); // let drawing go on in between
    await queue(() => (session.classified ? null : session.inference.run(session.warmUp)));
  }
}

// onnxruntime-web fetches and compiles its wasm as a stream, which lets Chromium cache the compiled code
// for the next start; the first download is read here beforehand, into the HTTP cache, to show progress.
async function prefetchRuntime(onProgress) {
  if (!(await hasOfflineCopy(RUNTIME_WASM))) await download(RUNTIME_WASM, onProgress);
}

// Vertical bars on a pad-sized image (one for a digit, four for a number): the size and kind of input a drawing will be.
function warmUpImage(ort, mode) {
  const height = MAX_INPUT_SIDES.digit;
  const width = MAX_INPUT_SIDES[mode];
  const bars = mode === 'number' ? 4 : 1;
  const data = new Float32Array(height * width);
  for (let bar = 0; bar < bars; bar++) {
    const column = Math.round(((bar + 0.5) * width) / bars);
    for (let row = height / 4; row < (3 * height) / 4; row++) data.fill(1, row * width + column - 8, row * width + column + 8);
  }
  return new ort.Tensor('float32', data, [height, width]);
}

/** How to read the pad for `manifest`'s reader of `mode`: the longest side, and the values of ink and background. */
export function inputFormat(manifest, mode = 'digit') {
  const input = manifest ? readerOf(manifest, mode)?.input : null;
  return { maxSide: MAX_INPUT_SIDES[mode], ink: input?.ink ?? 1, background: input?.background ?? 0 };
}

async function runInBrowser(session, mode, reader, variantRunning, image, queue) {
  const { ort, inference } = session;
  session.classified = true;
  const started = performance.now();
  const input = new ort.Tensor('float32', image.data, [image.height, image.width]);
  const outputs = await queue(() => inference.run({ [reader.input.name]: input }));
  const output = (name) => outputs[reader.outputs[name].name];
  const [height, width] = output('normalized').dims;
  const page = {
    normalized: { data: output('normalized').data, height, width },
    backend: 'browser',
    // Named as the server names a variant it runs other than the default, so an answer says which file gave it.
    model: variantRunning && variantRunning !== reader.default_variant ? `${reader.model_id}-${variantRunning}` : reader.model_id,
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

// onnxruntime-web runs one inference at a time per session; a second Predict waits for the first.
function createQueue() {
  let last = Promise.resolve();
  return (task) => {
    const next = last.then(task);
    last = next.catch(() => {});
    return next;
  };
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
