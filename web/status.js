/** The status line: download progress on the first visit, then where answers come from and whether the page works offline. */

const MEGABYTE = 1024 * 1024;
// Until the in-browser model runs, Predict asks the server, and each answer says so ("answered by the server").
const LOADING = 'Loading the recognizer (the server answers meanwhile)…';

/** Wire the status line `root` (#status in index.html). */
export function createStatus(root) {
  const progress = root.querySelector('#progress');
  const text = root.querySelector('#status-text');
  const shown = { runtime: '', offline: '' };
  // Unchanged text is not written again: even that would cost a slow CPU a layout pass.
  const render = () => {
    const line = [shown.runtime, shown.offline].filter(Boolean).join(' · ');
    if (text.textContent !== line) text.textContent = line;
  };

  return {
    /** Bytes of the model and runtime downloaded so far; `total` is null when the server compresses them. */
    showProgress(loaded, total) {
      if (root.dataset.runtime !== 'loading') return;
      if (total) {
        progress.value = loaded / total;
        shown.runtime = `${LOADING} ${Math.floor((100 * loaded) / total)}%`;
      } else {
        progress.removeAttribute('value');
        shown.runtime = `${LOADING} ${(loaded / MEGABYTE).toFixed(1)} MB`;
      }
      render();
    },

    /** 'loading' | 'ready' (`variant` of `reader`'s model runs in this browser) | 'failed' (the server answers). */
    showRuntime(state, reader, variant) {
      root.dataset.runtime = state;
      // A mode whose reader is still starting (the page switched to it) says so again.
      if (state === 'loading') {
        shown.runtime = LOADING;
        delete root.dataset.variant;
      }
      if (state === 'ready') {
        root.dataset.variant = variant;
        shown.runtime = `Model ${reader.model_id} (${variant})`;
      }
      if (state === 'failed') shown.runtime = 'The server answers (no in-browser model)';
      render();
    },

    /** Whether the page can start again without the server (data-offline="ready" once it can). */
    showOffline(ready) {
      root.dataset.offline = ready ? 'ready' : 'unavailable';
      shown.offline = ready ? 'works offline' : '';
      render();
    },
  };
}
