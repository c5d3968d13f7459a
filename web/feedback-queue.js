/**
 * The feedback queue: each entry waits in IndexedDB until the server has stored it, so a tap made while
 * the server is away survives a reload or a browser restart and is sent when the server answers again.
 * Every entry carries the id the page gave it, and the server stores an id once, so a resend is harmless.
 */

const DATABASE = 'kiosk-feedback';
const STORE = 'queue';
// Waits between attempts while the server is away or busy; the last one repeats.
const RETRY_DELAYS_MS = [2000, 5000, 15000, 30000, 60000];

/** A queue posting to `url`; `onChange(count)` hears how many entries wait. */
export function createFeedbackQueue({ url = '/feedback', onChange = () => {} } = {}) {
  const database = openDatabase();
  let sending = null;
  let timer = 0;
  let failures = 0;

  async function count() {
    return request(await database, 'readonly', (store) => store.count());
  }

  async function changed() {
    onChange(await count());
  }

  function retryLater(delayMs) {
    clearTimeout(timer);
    const wait = delayMs ?? RETRY_DELAYS_MS[Math.min(failures, RETRY_DELAYS_MS.length - 1)];
    failures += 1;
    timer = setTimeout(flush, wait);
  }

  // Oldest first, one at a time, until the queue is empty or the server cannot take more now.
  async function send() {
    clearTimeout(timer);
    for (;;) {
      const entries = await request(await database, 'readonly', (store) => store.getAll());
      if (!entries.length) return;
      entries.sort((first, second) => first.queuedAt - second.queuedAt);
      for (const { queuedAt, ...entry } of entries) {
        let response;
        try {
          response = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(entry) });
        } catch {
          return retryLater();
        }
        // 404: this server takes no feedback (now); 429 and 5xx: later. Entries are kept for then.
        if (response.status === 404 || response.status === 429 || response.status >= 500) {
          return retryLater(retryAfterMs(response));
        }
        // Anything else is an answer about this entry: stored (200/201), or refused for good (4xx).
        if (!response.ok) console.warn(`feedback ${entry.id} refused by the server (${response.status}); dropped`);
        await request(await database, 'readwrite', (store) => store.delete(entry.id));
        failures = 0;
        changed();
      }
    }
  }

  /** Send what waits now, unless a send is already under way. */
  function flush() {
    sending ??= send()
      .catch((error) => {
        console.warn('feedback queue:', error.message);
        retryLater();
      })
      .finally(() => (sending = null));
    return sending;
  }

  addEventListener('online', flush);

  return {
    count,
    flush,
    /** Keep `entry` (with its `id`) until the server has it; resolves once it is safely in IndexedDB. */
    async add(entry) {
      await request(await database, 'readwrite', (store) => store.put({ ...entry, queuedAt: Date.now() }));
      changed();
      flush();
    },
  };
}

function retryAfterMs(response) {
  const seconds = Number(response.headers.get('retry-after'));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 300) * 1000 : undefined;
}

function openDatabase() {
  return new Promise((resolve, reject) => {
    const opening = indexedDB.open(DATABASE, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(STORE, { keyPath: 'id' });
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error);
  });
}

// One request in its own transaction; resolves with its result once the transaction has committed.
function request(database, mode, makeRequest) {
  return new Promise((resolve, reject) => {
    const transaction = database.transaction(STORE, mode, { durability: 'strict' });
    const pending = makeRequest(transaction.objectStore(STORE));
    transaction.oncomplete = () => resolve(pending.result);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
}
