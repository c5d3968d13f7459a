/**
 * The digit classifier. It runs the very ONNX file the server runs (named and hashed by the manifest) with
 * onnxruntime-web inside the page; until that has started, or if it cannot start (no WebAssembly, the
 * runtime blocked or broken), it asks the server's POST /predict instead.
 */
import { download, hasOfflineCopy, loadModel } from './offline.js';

// onnxruntime-web's wasm-only build, copied here by `make vendor` (never a CDN: the kiosk may be offline).
const RUNTIME_DIRECTORY = '/vendor/';
const RUNTIME_MODULE = `${RUNTIME_DIRECTORY}ort.wasm.min.mjs`;
const RUNTIME_FILES = [RUNTIME_MODULE, `${RUNTIME_DIRECTORY}ort-wasm-simd-threaded.mjs`, `${RUNTIME_DIRECTORY}ort-wasm-simd-threaded.wasm`];
const RUNTIME_WASM = RUNTIME_FILES[2];
const PREDICT_URL = '/predict';
// Larger pads are scaled down first: the model only keeps a 20 px box, and 280 px holds every stroke.
const MAX_INPUT_SIDE = 280;
const SERVER_RETRY_DELAYS_MS = [500, 1500];
const WARM_UP_RUNS = 10;
const BYTE_MAX = 255; // PNG channels are bytes

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
 */
export function createClassifier({ onProgress = () => {}, onStateChange = () => {}, variant = null } = {}) {
  let state = 'loading';
  let manifest = null;
  let session = null;
  let variantRunning = null;
  const queue = createQueue();
  const setState = (next) => onStateChange((state = next));

  let announceManifest;
  const manifestLoaded = new Promise((resolve) => (announceManifest = resolve));

  const started = (async () => {
    const progress = trackProgress(onProgress);
    const modelLoaded = loadModel(progress.part('model'), variant).then((model) => {
      performance.mark('classifier:model-loaded');
      variantRunning = model.variant;
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
    const warmUp = { [manifest.input.name]: warmUpImage(ort) };
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
    /** The manifest variant the page runs, once the model has loaded. */
    get variant() {
      return variantRunning;
    },
    /** How to read the pad for the model (see inputFormat). */
    get inputFormat() {
      return inputFormat(manifest);
    },
    /**
     * Classify `image` ({data, height, width}) in the page when the model is running there, else on the
     * server. Resolves to {index, label, confidence, probabilities, verdict, notDigit, normalized, backend, model,
     * milliseconds}.
     */
    async classify(image, { onRetry = () => {}, signal } = {}) {
      if (state === 'ready') return runInBrowser(session, manifest, variantRunning, image, queue);
      return askServer(image, manifest, { onRetry, signal, browserReady: () => (state === 'ready' ? runInBrowser(session, manifest, variantRunning, image, queue) : null) });
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

// A vertical bar on a pad-sized image: the size and kind of input a drawing will be.
function warmUpImage(ort) {
  const side = MAX_INPUT_SIDE;
  const data = new Float32Array(side * side);
  for (let row = side / 4; row < (3 * side) / 4; row++) data.fill(1, row * side + side / 2 - 8, row * side + side / 2 + 8);
  return new ort.Tensor('float32', data, [side, side]);
}

/** How to read the pad for `manifest`'s model: the longest side, and the values of ink and background. */
export function inputFormat(manifest) {
  return { maxSide: MAX_INPUT_SIDE, ink: manifest?.input.ink ?? 1, background: manifest?.input.background ?? 0 };
}

async function runInBrowser(session, manifest, variantRunning, image, queue) {
  const { ort, inference } = session;
  session.classified = true;
  const started = performance.now();
  const input = new ort.Tensor('float32', image.data, [image.height, image.width]);
  const outputs = await queue(() => inference.run({ [manifest.input.name]: input }));
  const probabilities = Array.from(outputs[manifest.outputs.probabilities.name].data);
  const normalizedTensor = outputs[manifest.outputs.normalized.name];
  const [height, width] = normalizedTensor.dims;
  return describe(probabilities, manifest, {
    verdict: manifest.outputs.verdict.values[Number(outputs[manifest.outputs.verdict.name].data[0])],
    notDigit: outputs[manifest.outputs.not_digit.name].data[0],
    normalized: { data: normalizedTensor.data, height, width },
    backend: 'browser',
    // Named as the server names a variant it runs other than the default, so an answer says which file gave it.
    model: variantRunning && variantRunning !== manifest.default_variant ? `${manifest.model_id}-${variantRunning}` : manifest.model_id,
    milliseconds: performance.now() - started,
  });
}

/** POST the image to the server, retrying briefly when it is unreachable or failing (5xx). */
async function askServer(image, manifest, { onRetry, signal, browserReady }) {
  const body = await toPng(image, manifest?.input);
  for (let attempt = 0; ; attempt++) {
    const started = performance.now();
    try {
      const answer = await postImage(body, signal);
      return describe(answer.probabilities, manifest, {
        verdict: answer.verdict,
        notDigit: answer.not_digit,
        normalized: null,
        backend: 'server',
        model: answer.model,
        milliseconds: performance.now() - started,
      });
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

async function postImage(body, signal) {
  let response;
  try {
    response = await fetch(PREDICT_URL, { method: 'POST', headers: { 'Content-Type': 'image/png' }, body, signal });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ServerError('the server cannot be reached', 0);
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ServerError(answer.error ?? `the server answered ${response.status}`, response.status);
  return answer;
}

function describe(probabilities, manifest, extra) {
  const index = probabilities.indexOf(Math.max(...probabilities));
  const labels = manifest?.labels ?? probabilities.map((_, position) => String(position));
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

// Two downloads (model, runtime) shown as one progress figure.
function trackProgress(onProgress) {
  const parts = new Map();
  return {
    part(name) {
      return (loaded, total) => {
        parts.set(name, { loaded, total });
        const all = [...parts.values()];
        const known = all.every((part) => part.total);
        const sum = (key) => all.reduce((total, part) => total + part[key], 0);
        onProgress(sum('loaded'), known ? sum('total') : null);
      };
    },
  };
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
