/**
 * The in-browser readers' own thread. onnxruntime-web's 14 MB wasm is instantiated once, here, each reader's
 * session created and every prediction run here, so the page's thread stays free: the pad takes ink and the
 * buttons answer while a model starts, and the server can answer meanwhile. One worker serves the page's
 * readers (the digit reader, and the number reader once number mode is first chosen): one wasm instance and
 * its memory, not one per reader.
 *
 * Page → worker: {type: 'runtime', runtime: {directory, module, glue, wasm}} to load onnxruntime-web before any reader;
 * {type: 'start', reader, mode, variant, runtime} once per reader (an id the page chooses), then {type: 'run', reader, id, image: {data, height, width}} (data transferred).
 * Worker → page, each with its reader: {type: 'progress', loaded, total}, {type: 'model', manifest, variant},
 * {type: 'mark', name, time} (time on the shared clock, performance.timeOrigin + now), {type: 'ready'} or
 * {type: 'failed', message}; for each run {type: 'outputs', id, outputs: {name: {data, dims}}, milliseconds}
 * or {type: 'error', id, message}.
 */
// Imported, not waited for: onnxruntime-web starts loading before this module has.
const offline = import('./offline.js');

const WARM_UP_RUNS = 10;

const sessions = new Map(); // reader id -> {inference, warmUp, input}, once ready
let runtime = null; // onnxruntime-web, imported and set up once for every reader
const queue = createQueue();
let classified = false; // a real prediction has run: warm-up runs stop

const runtimeProgress = new Set(); // each starting reader's onProgress for the runtime's download

self.addEventListener('message', ({ data: message }) => {
  // A failure here is the first reader's to report.
  if (message.type === 'runtime') startRuntime(message.runtime).catch(() => {});
  if (message.type === 'start') start(message);
  if (message.type === 'run') run(message);
});

async function start({ reader: id, mode, variant, runtime: files }) {
  const post = (message) => self.postMessage({ ...message, reader: id });
  const mark = (name) => post({ type: 'mark', name, time: performance.timeOrigin + performance.now() });
  try {
    const { combineProgress, loadModel, readerOf } = await offline;
    const progress = combineProgress((loaded, total) => post({ type: 'progress', loaded, total }));
    const modelLoaded = loadModel(progress.part('model'), variant, mode).then((model) => {
      mark('model-loaded');
      post({ type: 'model', manifest: model.manifest, variant: model.variant });
      return model;
    });
    if (typeof WebAssembly !== 'object') {
      await modelLoaded;
      throw new Error('this browser has no WebAssembly');
    }
    const onRuntimeProgress = progress.part('runtime');
    runtimeProgress.add(onRuntimeProgress);
    const [model, ort] = await Promise.all([modelLoaded, startRuntime(files)]).finally(() => runtimeProgress.delete(onRuntimeProgress));
    const reader = readerOf(model.manifest, mode);
    const inference = await ort.InferenceSession.create(model.bytes);
    mark('session-created');
    // The first run of a session sets up its buffers: do that now, not on someone's digit.
    const warmUp = { [reader.input.name]: warmUpImage(ort, model.manifest.pad[mode], mode) };
    await queue(() => inference.run(warmUp));
    mark('first-run');
    const session = { ort, inference, warmUp, input: reader.input.name };
    sessions.set(id, session);
    post({ type: 'ready' });
    keepWarm(session);
  } catch (error) {
    post({ type: 'failed', message: error.message });
  }
}

// onnxruntime-web, loaded once for every reader: on the page's {type: 'runtime'} as it starts, else with the first reader.
function startRuntime(files) {
  const mark = (name) => self.postMessage({ type: 'mark', reader: null, name, time: performance.timeOrigin + performance.now() });
  const onProgress = (loaded, total) => runtimeProgress.forEach((report) => report(loaded, total));
  runtime ??= loadRuntime(files, onProgress, mark);
  return runtime;
}

async function loadRuntime(files, onProgress, mark) {
  // A phase mark for bench/: onnxruntime-web compiles (or, from V8's code cache, loads) its wasm here.
  const instantiateStreaming = WebAssembly.instantiateStreaming;
  WebAssembly.instantiateStreaming = (...args) => instantiateStreaming(...args).finally(() => mark('wasm-instantiated'));
  // The loader is imported beside the runtime, which would only ask for it once a session is created.
  const [ort] = await Promise.all([import(files.module), import(files.glue), prefetchRuntime(files.wasm, onProgress)]);
  mark('runtime-imported');
  ort.env.logLevel = 'error';
  ort.env.wasm.wasmPaths = files.directory;
  // Single-threaded wasm needs no cross-origin isolation headers (COOP/COEP, troublesome on iOS), and
  // this worker already keeps the model off the page's thread: no proxy worker of onnxruntime's own.
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  return ort;
}

async function run({ reader: id, id: runId, image }) {
  const post = (message) => self.postMessage({ ...message, reader: id, id: runId });
  try {
    const session = sessions.get(id);
    if (!session) throw new Error('the in-browser model is not ready');
    classified = true;
    const begun = performance.now();
    const input = new session.ort.Tensor('float32', image.data, [image.height, image.width]);
    const results = await queue(() => session.inference.run({ [session.input]: input }));
    // Copied, not transferred: the outputs are small (a 28 x W image at most).
    const outputs = Object.fromEntries(Object.entries(results).map(([name, tensor]) => [name, { data: tensor.data, dims: tensor.dims }]));
    post({ type: 'outputs', outputs, milliseconds: performance.now() - begun });
  } catch (error) {
    post({ type: 'error', message: error.message });
  }
}

// The browser compiles the wasm kernels a session uses with its optimising compiler only after a few
// runs (tens of ms each until then; after a reload its code cache may already hold them). Those runs go
// on once a model is ready, queued between people's predictions, and stop at the first real one.
async function keepWarm(session) {
  for (let count = 1; count < WARM_UP_RUNS && !classified; count++) {
    await new Promise((resolve) => setTimeout(resolve)); // let a real prediction in between
    await queue(() => (classified ? null : session.inference.run(session.warmUp)));
  }
}

// onnxruntime-web fetches and compiles its wasm as a stream, which lets Chromium cache the compiled code
// for the next start; the first download is read here beforehand, into the HTTP cache, to show progress.
async function prefetchRuntime(wasm, onProgress) {
  const { download, hasOfflineCopy } = await offline;
  if (!(await hasOfflineCopy(wasm))) await download(wasm, onProgress);
}

// Vertical bars on a pad-sized image (one for a digit, four for a number): the size and kind of input a drawing will be.
function warmUpImage(ort, { width, height }, mode) {
  const bars = mode === 'number' ? 4 : 1;
  const half = Math.round(height / 35); // about the pen's half width
  const data = new Float32Array(height * width);
  for (let bar = 0; bar < bars; bar++) {
    const column = Math.round(((bar + 0.5) * width) / bars);
    for (let row = Math.round(height / 4); row < Math.round((3 * height) / 4); row++) data.fill(1, row * width + column - half, row * width + column + half);
  }
  return new ort.Tensor('float32', data, [height, width]);
}

// onnxruntime-web runs one inference at a time per session; a second prediction waits for the first.
function createQueue() {
  let last = Promise.resolve();
  return (task) => {
    const next = last.then(task);
    last = next.catch(() => {});
    return next;
  };
}
