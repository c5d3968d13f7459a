/** The status line: download progress on the first visit, then where the answers come from. */

const MEGABYTE = 1024 * 1024;

/** Wire the status line `root` (#status in index.html). */
export function createStatus(root) {
  const progress = root.querySelector('#progress');
  const text = root.querySelector('#status-text');

  return {
    /** Bytes of the model and runtime downloaded so far; `total` is null when the server compresses them. */
    showProgress(loaded, total) {
      if (root.dataset.runtime !== 'loading') return;
      if (total) {
        progress.value = loaded / total;
        text.textContent = `Loading the recognizer… ${Math.floor((100 * loaded) / total)}%`;
      } else {
        progress.removeAttribute('value');
        text.textContent = `Loading the recognizer… ${(loaded / MEGABYTE).toFixed(1)} MB`;
      }
    },

    /** Whether the page can start again without the server (data-offline="ready" once it can). */
    showOffline(ready) {
      root.dataset.offline = ready ? 'ready' : 'unavailable';
    },

    /** 'loading' | 'ready' (the model runs in this browser) | 'failed' (the server answers). */
    showRuntime(state, manifest) {
      root.dataset.runtime = state;
      if (state === 'ready') text.textContent = `Runs in this browser · ${manifest.model_id}`;
      if (state === 'failed') text.textContent = 'Answers come from the server';
    },
  };
}
