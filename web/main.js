/** The kiosk page: wires the pad, the classifiers (digit and number), the answer panel and the offline cache together. */
import { createAnswer } from './answer.js';
import { createClassifier } from './classifier.js';
import { createFeedback, watchFeedback } from './feedback.js';
import { createFeedbackQueue } from './feedback-queue.js';
import { isNewModelDeployed, keepPageOffline, registerServiceWorker } from './offline.js';
import { createPad, readPixels } from './pad.js';
import { addressWithMode, readSettings } from './settings.js';
import { createStatus } from './status.js';

const settings = readSettings(location.search);
const elements = {
  kiosk: document.querySelector('.kiosk'),
  modes: [...document.querySelectorAll('.modes [data-mode]')],
  pad: document.querySelector('[data-testid="pad"]'),
  predict: document.querySelector('[data-testid="predict"]'),
  clear: document.querySelector('[data-testid="clear"]'),
  autoPredict: document.querySelector('#auto-predict'),
  result: document.querySelector('[data-testid="result"]'),
  status: document.querySelector('#status'),
  feedback: document.querySelector('#feedback'),
};
const timers = { autoPredict: 0, idle: 0 };
let running = null; // AbortController of the prediction under way, if any
let mode = null; // 'digit' or 'number', set below
const classifiers = {}; // one per mode, started when the mode is first used
const PAD_LABELS = {
  digit: 'Drawing pad: draw one digit with a finger, a pen or the mouse',
  number: 'Drawing pad: write a number, left to right, with a finger, a pen or the mouse',
};

const serviceWorker = registerServiceWorker();
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
  clearAll();
  mode = next;
  elements.kiosk.dataset.mode = mode;
  for (const button of elements.modes) button.setAttribute('aria-pressed', String(button.dataset.mode === mode));
  elements.pad.setAttribute('aria-label', PAD_LABELS[mode]);
  history.replaceState(history.state, '', addressWithMode(location.href, mode));
  answer.setMode(mode);
  const classifier = classifierFor(mode);
  feedback.setMode(mode, classifier.reader?.labels);
  status.showRuntime(classifier.state, classifier.reader, classifier.variant);
}

const pad = createPad(elements.pad, {
  onStrokeStart() {
    stopPrediction();
    answer.showStale();
    restartIdleTimer();
  },
  onStrokeEnd() {
    restartIdleTimer();
    // Predicting by itself also spares a touch user the tap Chromium may swallow right after a fast stroke.
    const delayMs = mode === 'number' ? settings.numberAutoPredictDelayMs : settings.autoPredictDelayMs;
    if (elements.autoPredict.checked) timers.autoPredict = setTimeout(predict, delayMs);
  },
});

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
    feedback.offer(result, elements.pad, pad.strokes());
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
elements.autoPredict.checked = settings.autoPredict;
restartIdleTimer();
elements.predict.addEventListener('click', predict);
elements.clear.addEventListener('click', clearAll);
for (const button of elements.modes) button.addEventListener('click', () => setMode(button.dataset.mode));
document.addEventListener('pointerdown', restartIdleTimer);
// A long press or a right click anywhere must not open Chromium's menu (Back, Reload, Print, Inspect):
// even in --kiosk that menu is a way out of the page.
document.addEventListener('contextmenu', (event) => event.preventDefault());
document.addEventListener('keydown', (event) => {
  restartIdleTimer();
  if (event.key === 'Escape') clearAll();
  // A focused button or switch handles Enter itself.
  if (event.key === 'Enter' && !event.target.closest('button, input')) predict();
});
