/**
 * The kiosk page behind its pad (main.js wires the pad and the buttons first, then loads this): the classifiers
 * (digit and number), the answer panel, feedback and the offline cache. startKiosk() returns what main.js's
 * listeners call.
 */
import { createAnswer } from './answer.js';
import { createClassifier } from './classifier.js';
import { createFeedback, watchFeedback } from './feedback.js';
import { createFeedbackQueue } from './feedback-queue.js';
import { fetchManifest, isNewModelDeployed, keepPageOffline, registerServiceWorker } from './offline.js';
import { readPixels } from './pad.js';
import { addressWithMode } from './settings.js';
import { createStatus } from './status.js';

const PAD_LABELS = {
  digit: 'Drawing pad: draw one digit with a finger, a pen or the mouse',
  number: 'Drawing pad: write a number, left to right, with a finger, a pen or the mouse',
};

/**
 * Take over the page main.js wired: `pad` (pad.js), `settings` (settings.js), `elements` (main.js's), and
 * `rememberPad(manifest.pad)`, which sizes the pads and their pen and keeps that for the next start.
 */
export async function startKiosk({ pad, settings, elements, rememberPad }) {
  const timers = { autoPredict: 0, idle: 0 };
  let running = null; // AbortController of the prediction under way, if any
  let mode = null; // 'digit' or 'number', set below
  const classifiers = {}; // one per mode, started when the mode is first used

  const serviceWorker = registerServiceWorker();
  // The pad's size and pen come from the manifest (reader/contract.py through convert/), as the server's do.
  // Nothing heavy waits on this: the models start in their workers once a mode is chosen.
  const manifest = await fetchManifest().catch((error) => {
    elements.status.querySelector('#status-text').textContent = 'The recognizer cannot be reached. Reload to try again.';
    throw error;
  });
  rememberPad(manifest.pad);
  const answer = createAnswer(elements.result);
  const status = createStatus(elements.status);
  let feedbackWatch = null;
  const feedbackQueue = createFeedbackQueue({
    onChange: (count) => (elements.feedback.dataset.queued = count),
    onUnavailable: () => feedbackWatch?.check(),
  });
  const feedback = createFeedback(elements.feedback, { queue: feedbackQueue });
  feedback.setEnabled(settings.feedback);
  if (settings.feedback) {
    feedbackWatch = watchFeedback((enabled) => {
      feedback.setEnabled(enabled);
      if (enabled) feedbackQueue.flush();
    });
  }

  // The first classifier also caches the other mode's model (offline.js), so the page keeps both readers offline.
  function classifierFor(wanted) {
    if (classifiers[wanted]) return classifiers[wanted];
    const classifier = (classifiers[wanted] = createClassifier({
      mode: wanted,
      manifest,
      onProgress: (loaded, total) => mode === wanted && status.showProgress(loaded, total),
      onStateChange: (state) => mode === wanted && status.showRuntime(state, classifier.reader, classifier.variant),
    }));
    classifier.manifestLoaded.then((manifest) => {
      if (wanted === 'digit') answer.setLabels(manifest.labels);
      if (mode === wanted) feedback.setLabels(classifier.reader.labels);
    });
    if (Object.keys(classifiers).length === 1) {
      classifier.started
        .catch(() => {})
        .then(() => keepPageOffline(serviceWorker, classifier.runtimeFiles))
        .then(status.showOffline, (error) => console.warn('offline copy incomplete:', error.message));
    }
    return classifier;
  }

  /** Read digits or numbers from now on: an empty pad of the mode's shape, and the address says which (?mode=number). */
  function setMode(next) {
    if (next === mode) return;
    if (mode) clearAll(); // the first mode keeps what was drawn while the page loaded
    mode = next;
    // main.js has set the first mode's look already: unchanged attributes are not written again (each write
    // restyles what style.css selects with them, a long task on a slow CPU).
    if (elements.kiosk.dataset.mode !== mode) elements.kiosk.dataset.mode = mode;
    for (const button of elements.modes) {
      const pressed = String(button.dataset.mode === mode);
      if (button.getAttribute('aria-pressed') !== pressed) button.setAttribute('aria-pressed', pressed);
    }
    if (elements.pad.getAttribute('aria-label') !== PAD_LABELS[mode]) elements.pad.setAttribute('aria-label', PAD_LABELS[mode]);
    history.replaceState(history.state, '', addressWithMode(location.href, mode));
    answer.setMode(mode);
    const classifier = classifierFor(mode);
    feedback.setMode(mode, classifier.reader?.labels);
    status.showRuntime(classifier.state, classifier.reader, classifier.variant);
  }

  function onStrokeStart() {
    stopPrediction();
    answer.showStale();
    restartIdleTimer();
  }

  function onStrokeEnd() {
    restartIdleTimer();
    // Predicting by itself also spares a touch user the tap Chromium may swallow right after a fast stroke.
    const delayMs = mode === 'number' ? settings.numberAutoPredictDelayMs : settings.autoPredictDelayMs;
    if (elements.autoPredict.checked) timers.autoPredict = setTimeout(predict, delayMs);
  }

  async function predict() {
    stopPrediction();
    if (pad.isEmpty()) return answer.showEmpty({ prompted: true });
    const controller = (running = new AbortController());
    const classifier = classifierFor(mode);
    const image = readPixels(elements.pad, classifier.inputFormat);
    answer.showBusy();
    try {
      const result = await classifier.classify(image, {
        signal: controller.signal,
        onRetry: (error, delayMs) => controller.signal.aborted || answer.showRetrying(error, delayMs),
      });
      if (controller.signal.aborted) return;
      answer.showResult(result);
      feedback.offer(result, elements.pad, pad.strokes(), classifier.inputFormat.maxSide);
    } catch (error) {
      if (!controller.signal.aborted) answer.showError(error);
    }
  }

  function stopPrediction() {
    clearTimeout(timers.autoPredict);
    feedback.withdraw();
    running?.abort();
    running = null;
  }

  function clearAll() {
    stopPrediction();
    pad.clear();
    answer.showEmpty();
  }

  function restartIdleTimer() {
    clearTimeout(timers.idle);
    if (settings.idleClearSeconds > 0) timers.idle = setTimeout(whenIdle, settings.idleClearSeconds * 1000);
  }

  // An unattended kiosk forgets an abandoned drawing, and, as nobody ever reloads it, takes up a newly
  // deployed model by reloading while nobody is drawing: the whole page switches at once, never half.
  async function whenIdle() {
    restartIdleTimer();
    if (pad.isDrawing()) return;
    clearAll();
    const { manifest } = classifierFor(mode);
    if (!manifest || !(await isNewModelDeployed(manifest))) return;
    if (pad.isEmpty() && !pad.isDrawing()) location.reload();
  }

  setMode(settings.mode);
  restartIdleTimer();
  return { predict, clearAll, setMode, restartIdleTimer, onStrokeStart, onStrokeEnd };
}
