/**
 * Offline support, shared by the page and the service worker (sw.js imports it, so nothing here touches
 * the DOM at load time).
 *
 * - The models (the digit reader and the number reader): their bytes are cached under their sha256 next to
 *   the manifest that names them, and the manifest is only replaced once the new model has downloaded and
 *   matched its hash. A page therefore never runs one model with another model's manifest, and a new hash
 *   on the server is picked up on the next load.
 * - The page, scripts and onnxruntime-web's wasm: cached by URL; the service worker asks the network first
 *   and answers from this cache when the server is away or failing.
 */

export const SHELL_CACHE = 'shell-v1';
export const MODEL_CACHE = 'model-v1';
export const MANIFEST_PATH = '/model/manifest.json';
export const FEEDBACK_PATH = '/feedback';
const MODEL_PREFIX = '/model/';
const API_PATHS = new Set(['/predict', '/number', '/healthz', FEEDBACK_PATH]);
// Cache keys only, never requested from the server.
const CACHED_MANIFEST_KEY = '/offline/manifest.json';
const modelKey = (sha256) => `/offline/model-${sha256}.onnx`;

/** Whether a same-origin GET of `pathname` belongs to the page itself (HTML, scripts, styles, wasm). */
export function isShellPath(pathname) {
  return !pathname.startsWith(MODEL_PREFIX) && !API_PATHS.has(pathname);
}

/** The cache key of a page file: its URL without the query string (the kiosk may add settings, ?idle=60). */
export function shellKey(url) {
  const { origin, pathname } = new URL(url);
  return origin + pathname;
}

/** Whether the page keeps a copy of `url` for offline starts. */
export async function hasOfflineCopy(url) {
  const cache = await openCache(SHELL_CACHE);
  return Boolean(await cache?.match(shellKey(new URL(url, location.href))));
}

/** The manifest stored with the last model that downloaded and matched its hash, or null. */
export async function cachedManifestResponse() {
  const cache = await openCache(MODEL_CACHE);
  return (await cache?.match(CACHED_MANIFEST_KEY)) ?? null;
}

/**
 * The manifest's description of one reader: the digit reader's keys are the manifest's own, the number
 * reader's its "numbers" section (null in a manifest without one). Both have model_id, labels, input,
 * outputs, default_variant, browser_variant and variants.
 */
export function readerOf(manifest, mode = 'digit') {
  return mode === 'number' ? (manifest.numbers ?? null) : manifest;
}

const READER_MODES = ['digit', 'number'];

/**
 * The variant the page runs: the reader's `browser_variant` when it names one (the file fastest in
 * onnxruntime-web may not be the server's), else its `default_variant`.
 */
export function browserVariant(reader) {
  return reader.browser_variant in reader.variants ? reader.browser_variant : reader.default_variant;
}

/**
 * The manifest, the variant chosen for `mode`'s reader (`variant` if it has one of that name, else
 * browserVariant) and the bytes of its model, from the cache when the hash is already there, otherwise
 * downloaded with `onProgress(loaded, total)`, checked and cached. The other reader's file is cached too,
 * so that the page can switch modes offline.
 */
export async function loadModel(onProgress = () => {}, variant = null, mode = 'digit') {
  const cache = await openCache(MODEL_CACHE);
  let manifest;
  try {
    manifest = await fetchJson(MANIFEST_PATH);
  } catch (error) {
    manifest = await readCachedManifest(cache);
    if (!manifest) throw error;
  }
  const choose = (candidate) => chooseVariants(candidate, mode, variant)[mode];
  try {
    return { manifest, variant: choose(manifest), bytes: await modelBytes(manifest, mode, variant, cache, onProgress) };
  } catch (error) {
    // The server may be switching models (the file named by the manifest is gone) or going away:
    // keep running the last complete pair rather than nothing.
    const fallback = await readCachedManifest(cache);
    if (!fallback || !choose(fallback) || modelSha256(fallback, mode, choose(fallback)) === modelSha256(manifest, mode, choose(manifest))) {
      throw error;
    }
    return { manifest: fallback, variant: choose(fallback), bytes: await modelBytes(fallback, mode, variant, cache, onProgress) };
  }
}

/**
 * The manifest the page starts with (the pad's geometry, the readers' labels): the server's, else the one
 * stored with the cached models. The worker that runs a reader reads its own (loadModel).
 */
export async function fetchManifest() {
  try {
    return await fetchJson(MANIFEST_PATH);
  } catch (error) {
    const cached = await readCachedManifest(await openCache(MODEL_CACHE));
    if (!cached) throw error;
    return cached;
  }
}

/**
 * Whether the server now names other models than `manifest` (a new release was deployed). False when
 * the server cannot be asked: offline, the models in hand are the best there are.
 */
export async function isNewModelDeployed(manifest) {
  try {
    return modelsOf(await fetchJson(MANIFEST_PATH)) !== modelsOf(manifest);
  } catch {
    return false;
  }
}

const modelSha256 = (manifest, mode, variantName) => readerOf(manifest, mode)?.variants[variantName]?.sha256;
const modelsOf = (manifest) => READER_MODES.map((mode) => {
  const reader = readerOf(manifest, mode);
  return reader ? modelSha256(manifest, mode, browserVariant(reader)) : '';
}).join();

// The variant the page runs for each reader the manifest has: `variant` for `mode` when it has that one.
function chooseVariants(manifest, mode, variant) {
  const chosen = {};
  for (const each of READER_MODES) {
    const reader = readerOf(manifest, each);
    if (reader) chosen[each] = each === mode && reader.variants[variant] ? variant : browserVariant(reader);
  }
  return chosen;
}

async function modelBytes(manifest, mode, variant, cache, onProgress) {
  const chosen = chooseVariants(manifest, mode, variant);
  if (!chosen[mode]) throw new Error(`the manifest has no ${mode} reader`);
  const progress = combineProgress(onProgress);
  const files = Object.fromEntries(Object.entries(chosen).map(([each, name]) => [each, readerOf(manifest, each).variants[name]]));
  const downloads = Object.entries(files).map(([each, file]) => {
    const bytes = fileBytes(file, cache, progress.part(each));
    // The other reader's file is only kept for later: failing to get it must not stop this one.
    return each === mode ? bytes : bytes.catch((error) => console.warn(`${each} reader not kept offline:`, error.message));
  });
  const [bytes] = await Promise.all([downloads[Object.keys(files).indexOf(mode)], ...downloads]);
  if (cache) {
    // The manifest goes in after its models, so a reader never finds a manifest without its model.
    await cache.put(CACHED_MANIFEST_KEY, new Response(JSON.stringify(manifest), { headers: { 'Content-Type': 'application/json' } }));
    const kept = new Set(Object.values(files).map((file) => modelKey(file.sha256)));
    for (const request of await cache.keys()) {
      const { pathname } = new URL(request.url);
      if (pathname.endsWith('.onnx') && !kept.has(pathname)) await cache.delete(request);
    }
  }
  return bytes;
}

// One model file, from the cache when its hash is there, otherwise downloaded, checked and cached.
async function fileBytes(file, cache, onProgress) {
  const key = modelKey(file.sha256);
  const cached = await cache?.match(key);
  let bytes = cached ? new Uint8Array(await cached.arrayBuffer()) : null;
  if (!bytes || (await sha256Hex(bytes)) !== file.sha256) {
    bytes = await download(MODEL_PREFIX + file.file, onProgress, file.bytes);
    const digest = await sha256Hex(bytes);
    if (digest && digest !== file.sha256) throw new Error(`${file.file} does not match its sha256`);
    await cache?.put(key, new Response(bytes));
  }
  return bytes;
}

/** Several downloads reported as one `onProgress(loaded, total)`; total is null until every size is known. */
export function combineProgress(onProgress) {
  const parts = new Map();
  return {
    part(name) {
      return (loaded, total) => {
        parts.set(name, { loaded, total });
        const all = [...parts.values()];
        const sum = (key) => all.reduce((sum, part) => sum + part[key], 0);
        onProgress(sum('loaded'), all.every((part) => part.total) ? sum('total') : null);
      };
    },
  };
}

async function readCachedManifest(cache) {
  const response = await cache?.match(CACHED_MANIFEST_KEY);
  return response ? response.json() : null;
}

/** Fetch `url` as bytes, reporting `onProgress(loaded, total)`; total is null when it cannot be known. */
export async function download(url, onProgress = () => {}, expectedBytes = null) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  // A compressed body's Content-Length counts compressed bytes, but the stream yields decompressed ones.
  const length = response.headers.get('content-encoding') ? null : Number(response.headers.get('content-length'));
  const total = length || expectedBytes || null;
  const chunks = [];
  let loaded = 0;
  const reader = response.body.getReader();
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    chunks.push(chunk.value);
    loaded += chunk.value.length;
    onProgress(loaded, total);
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/**
 * Keep a copy of every file this page loaded from its own server (and of `extraUrls`, files loaded
 * behind the page's back), so the next start works with the server down. Only files not cached yet are
 * fetched, and those are revalidations the browser's HTTP cache answers with 304. Resolves to whether
 * the page can now start offline (it needs the service worker `registered` to be running).
 */
export async function keepPageOffline(registered, extraUrls = []) {
  if (!(await registered) || !globalThis.caches) return false;
  const cache = await caches.open(SHELL_CACHE);
  const loaded = performance.getEntriesByType('resource').map((entry) => entry.name);
  const urls = [location.href, ...loaded, ...extraUrls].map((url) => new URL(url, location.href));
  const keys = new Set(urls.filter((url) => url.origin === location.origin && isShellPath(url.pathname)).map(shellKey));
  await Promise.all(
    [...keys].map(async (key) => {
      if (!(await cache.match(key))) await cache.add(key);
    }),
  );
  await navigator.serviceWorker.ready;
  return true;
}

/** Register the service worker that serves the page from the cache when the server is away. */
export async function registerServiceWorker(url = '/sw.js') {
  if (!('serviceWorker' in navigator)) return null;
  try {
    return await navigator.serviceWorker.register(url, { type: 'module' });
  } catch (error) {
    // No service worker (old browser, or a plain-http address other than localhost): the page still
    // works online, it just cannot start without the server.
    console.warn('offline mode unavailable:', error.message);
    return null;
  }
}

async function fetchJson(url) {
  const response = await fetch(url, { cache: 'no-cache' });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

// The Cache API and SubtleCrypto exist only in secure contexts (https, or localhost as on the kiosk).
async function openCache(name) {
  return globalThis.caches ? caches.open(name) : null;
}

async function sha256Hex(bytes) {
  if (!globalThis.crypto?.subtle) return null;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
