/**
 * The feedback queue: each entry waits in IndexedDB until the server has stored it, so a tap made while
 * the server is away survives a reload or a browser restart and is sent when the server answers again.
 * Every entry carries the id the page gave it, and the server stores an id once, so a resend is harmless.
 * The queue is bounded (the oldest entry goes first), and an entry the server refuses for good, or that has
 * waited too long, is dropped: a kiosk whose server never takes feedback does not fill its disk or retry forever.
 */

const DATABASE = 'kiosk-feedback';
const STORE = 'queue';
// Waits between attempts while the server is away or busy; the last one repeats.
const RETRY_DELAYS_MS = [2000, 5000, 15000, 30000, 60000];
export const MAX_QUEUED = 200;
export const MAX_AGE_MS = 7 * 24 * 3600 * 1000;
// Answers that say "not now" (the entry is kept for later); any other 4xx is about the entry, for good.
const TRY_LATER = [408, 425, 429];

/** A queue posting to `url`; `onChange(count)` hears how many entries wait, `onUnavailable()` that the server's
 * store cannot take entries now (503). */
export function createFeedbackQueue({ url = '/feedback', onChange = () => {}, onUnavailable = () => {} } = {}) {
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
        if (Date.now() - queuedAt > MAX_AGE_MS) {
          await drop(entry.id, 'waited too long');
          continue;
        }
        let response;
        try {
          response = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(entry) });
        } catch {
          return retryLater();
        }
        // 404: this server takes no feedback: nothing queued will ever be stored there.
        if (response.status === 404) return clear('this server takes no feedback');
        if (TRY_LATER.includes(response.status) || response.status >= 500) {
          if (response.status === 503) onUnavailable();
          return retryLater(retryAfterMs(response));
        }
        // Stored (200/201), or refused for good (another 4xx): either way it leaves the queue.
        await drop(entry.id, response.ok ? null : `refused by the server (${response.status})`);
        failures = 0;
      }
    }
  }

  async function drop(id, why) {
    if (why) console.warn(`feedback ${id} dropped: ${why}`);
    await request(await database, 'readwrite', (store) => store.delete(id));
    changed();
  }

  async function clear(why) {
    console.warn(`feedback queue emptied: ${why}`);
    await request(await database, 'readwrite', (store) => store.clear());
    changed();
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
      const waiting = await request(await database, 'readonly', (store) => store.getAll());
      waiting.sort((first, second) => first.queuedAt - second.queuedAt);
      for (const old of waiting.slice(0, Math.max(0, waiting.length - MAX_QUEUED + 1))) await drop(old.id, 'the queue is full');
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
