/**
 * Service worker: lets the kiosk page start again when the server is restarting or the network is cut.
 * Every request for the page, its scripts and the runtime goes to the network first (so a new version is
 * used as soon as it is deployed) and falls back to the copy in the cache; while the server's version is the
 * cached one, the cached copy answers (with the compiled code Chromium keeps beside it); the manifest falls back to the
 * one stored with the cached models; GET /feedback says "unknown" rather than fail. POST /predict,
 * POST /number, POST /feedback and the model files are left to the page.
 */
import { SHELL_CACHE, MANIFEST_PATH, FEEDBACK_PATH, isShellPath, shellKey, cachedManifestResponse } from './offline.js';

// A server that is up answers loopback in milliseconds; one that takes this long is treated as away.
const NETWORK_TIMEOUT_MS = 4000;

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname === MANIFEST_PATH) {
    event.respondWith(networkFirst(event, cachedManifestResponse));
  } else if (url.pathname === FEEDBACK_PATH) {
    // With the server away, whether it takes feedback is unknown: the page keeps its buttons and queues.
    event.respondWith(fetchWithTimeout(request).catch(() => Response.json({ feedback: 'unknown' })));
  } else if (isShellPath(url.pathname)) {
    event.respondWith(networkFirst(event, () => cachedShellResponse(url), (response) => remember(url, response), sameCachedCopy(url)));
  }
});

async function networkFirst(event, fromCache, onFresh = async () => {}, unchanged = async () => null) {
  try {
    const response = await fetchWithTimeout(event.request);
    // A failing server (5xx) is no better than none when a good copy is at hand.
    if (response.status < 500) {
      const cached = response.ok ? await unchanged(response) : null;
      if (cached) {
        response.body?.cancel();
        return cached;
      }
      if (response.ok) event.waitUntil(onFresh(response.clone()));
      return response;
    }
    return (await fromCache()) ?? response;
  } catch (error) {
    const cached = await fromCache();
    if (cached) return cached;
    throw error;
  }
}

function fetchWithTimeout(request) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), NETWORK_TIMEOUT_MS);
  return fetch(request, { signal: controller.signal }).finally(() => clearTimeout(timer));
}

async function cachedShellResponse(url) {
  const cache = await caches.open(SHELL_CACHE);
  return (await cache.match(shellKey(url))) ?? null;
}

// The server's file is the cached copy's version: answer with the copy in Cache Storage, whose compiled code
// Chromium keeps beside it (V8's code cache for scripts and for the 14 MB wasm), which it does not for a
// response the service worker passes on from the network.
function sameCachedCopy(url) {
  return async (response) => {
    const cached = await cachedShellResponse(url);
    return cached && version(cached) === version(response) ? cached : null;
  };
}

// Refresh a cached copy when the server's version changed; files the page never cached are left alone,
// and an unchanged 14 MB wasm is not written again on every start.
async function remember(url, response) {
  const cache = await caches.open(SHELL_CACHE);
  const cached = await cache.match(shellKey(url));
  if (cached && version(cached) !== version(response)) await cache.put(shellKey(url), response);
}

function version(response) {
  const { headers } = response;
  return headers.get('etag') ?? headers.get('last-modified') ?? headers.get('content-length');
}
