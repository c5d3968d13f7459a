/**
 * The page's one inference worker (inference-worker.js) and the onnxruntime-web files it loads: every classifier
 * of the page talks to it through here. Small on purpose: main.js imports it to start the worker as soon as the
 * pad is wired, so that onnxruntime-web loads while the rest of the page and the manifest do.
 */

// onnxruntime-web's wasm-only build, copied here by `make vendor` (never a CDN: the kiosk may be offline).
export const RUNTIME = {
  directory: '/vendor/',
  module: '/vendor/ort.wasm.min.mjs',
  glue: '/vendor/ort-wasm-simd-threaded.mjs', // its Emscripten loader, which ort.wasm.min.mjs imports
  wasm: '/vendor/ort-wasm-simd-threaded.wasm',
};
const WORKER_URL = '/inference-worker.js';
// What the worker loads behind the page's back, which the page keeps for offline starts.
export const RUNTIME_FILES = [WORKER_URL, RUNTIME.module, RUNTIME.glue, RUNTIME.wasm];

let worker = null;
export const listeners = new Map(); // reader id -> (message) => void
let lastReader = -1;

/** A new reader's id: the worker's messages name the reader they are for. */
export const nextReaderId = () => ++lastReader;

/** The worker, started on first use; its messages go to their reader's listener. */
export function inferenceWorker() {
  if (worker) return worker;
  worker = new Worker(WORKER_URL, { type: 'module', name: 'inference' });
  worker.addEventListener('message', ({ data: message }) => {
    // The runtime's own phases belong to no reader.
    if (message.reader === null && message.type === 'mark') markPhase(message);
    listeners.get(message.reader)?.(message);
  });
  // A worker that cannot even load its module (a browser without module workers) says so only here.
  worker.addEventListener('error', (event) => {
    event.preventDefault();
    for (const listener of listeners.values()) listener({ type: 'failed', message: event.message || 'the inference worker could not start' });
  });
  return worker;
}

/** Start the worker and onnxruntime-web in it now, before any reader is asked for. */
export function startInferenceWorker() {
  try {
    inferenceWorker().postMessage({ type: 'runtime', runtime: RUNTIME });
  } catch {} // no module workers: the first classifier says so, and the server answers
}

/** A phase of the worker on the page's timeline (bench/ reads these marks); `time` is on the shared clock. */
export function markPhase({ name, time }) {
  performance.mark(`classifier:${name}`, { startTime: time - performance.timeOrigin });
}
