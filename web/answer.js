/**
 * The answer panel: the predicted digit (large), how sure the model is, the 28x28 image it actually saw,
 * the ten bars, and a spoken summary for screen readers. data-state on the panel drives its look:
 * empty | sure | unsure | not-digit | error. The model itself decides sure, unsure or not a digit (its
 * `verdict` output), so the page and the server always say the same thing about one drawing.
 */
import { createChart } from './chart.js';

const BYTE_MAX = 255; // canvas channels are bytes

/** Wire the panel `root` (the [data-testid=result] section of index.html). */
export function createAnswer(root) {
  const digit = root.querySelector('#digit');
  const caption = root.querySelector('#caption');
  const preview = root.querySelector('#preview');
  const source = root.querySelector('#source');
  const chartElement = root.querySelector('#chart');
  const announcer = root.querySelector('#announcer');
  let chart = null;
  let chartLabels = null;

  function setLabels(labels) {
    if (chartLabels?.join() === labels.join()) return;
    chartLabels = labels;
    chart = createChart(chartElement, labels);
  }

  function reset(state, text) {
    root.dataset.state = state;
    delete root.dataset.digit;
    delete root.dataset.verdict;
    digit.textContent = '';
    caption.textContent = text;
    source.textContent = '';
    chart?.clear();
    root.classList.remove('busy', 'stale', 'has-preview');
  }

  function announce(text) {
    announcer.textContent = text;
  }

  /** Nothing drawn (after Clear, or Predict on a blank pad). */
  function showEmpty({ prompted = false } = {}) {
    reset('empty', 'Draw a digit');
    if (prompted) announce('The pad is empty: draw a digit first.');
  }

  return {
    setLabels,
    showEmpty,

    /** A prediction is running; a quick one finishes before this becomes visible (see style.css). */
    showBusy() {
      root.classList.add('busy');
    },

    /** The drawing changed since the answer shown was computed. */
    showStale() {
      root.classList.add('stale');
    },

    /** Show a prediction from the classifier. */
    showResult(result) {
      setLabels(result.labels);
      const percent = Math.round(100 * result.confidence);
      const look = VERDICT_LOOKS[result.verdict] ?? VERDICT_LOOKS.unsure;
      root.classList.remove('busy', 'stale');
      root.dataset.state = look.state;
      root.dataset.verdict = result.verdict;
      if (look.state === 'not-digit') delete root.dataset.digit;
      else root.dataset.digit = result.label;
      root.dataset.backend = result.backend;
      root.dataset.model = result.model;
      // How long the classifier took, read by bench/ (in-page inference, or the round trip to the server).
      root.dataset.milliseconds = result.milliseconds.toFixed(2);
      digit.textContent = look.state === 'not-digit' ? '' : result.label;
      caption.textContent = look.caption(result.label, percent);
      const where = result.backend === 'browser' ? 'in this browser' : 'by the server';
      source.textContent = `answered ${where} in ${Math.max(1, Math.round(result.milliseconds))} ms`;
      chart.show(result.probabilities, look.state === 'not-digit' ? -1 : result.index);
      root.classList.toggle('has-preview', Boolean(result.normalized));
      if (result.normalized) paintPreview(preview, result.normalized);
      announce(look.spoken(result.label));
    },

    /** The server is failing and the prediction will be tried again in `delayMs`. */
    showRetrying(error, delayMs) {
      caption.textContent = `${describeError(error)} Trying again in ${Math.ceil(delayMs / 1000)} s…`;
    },

    /** No answer could be had. */
    showError(error) {
      // The server's 422: what it was sent has no ink, which is the blank pad's case.
      if (error.status === 422) return showEmpty({ prompted: true });
      reset('error', `${describeError(error)} Press Predict to try again.`);
      announce(caption.textContent);
    },
  };
}

// How each of the model's verdicts looks and sounds.
const VERDICT_LOOKS = {
  digit: { state: 'sure', caption: (_, percent) => `${percent}% sure`, spoken: (label) => `That is a ${label}.` },
  unsure: {
    state: 'unsure',
    caption: (label, percent) => `Not sure. Maybe ${label} (${percent}%)`,
    spoken: (label) => `Not sure. Maybe a ${label}.`,
  },
  not_digit: {
    state: 'not-digit',
    caption: () => 'That doesn’t look like a digit — try again',
    spoken: () => 'That doesn’t look like a digit. Try again.',
  },
};

function describeError(error) {
  if (error.status === 0) return 'The recognizer cannot be reached.';
  if (error.status >= 500) return `The recognizer had a problem (error ${error.status}).`;
  return error.message ? `${error.message[0].toUpperCase()}${error.message.slice(1)}.` : 'Something went wrong.';
}

// The model's `normalized` output: the 28x28 image its CNN saw, values 0..1, drawn white on black.
function paintPreview(canvas, { data, height, width }) {
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d');
  const pixels = context.createImageData(width, height);
  for (let index = 0; index < data.length; index++) {
    const byte = Math.round(BYTE_MAX * Math.min(1, Math.max(0, data[index])));
    pixels.data.set([byte, byte, byte, BYTE_MAX], 4 * index);
  }
  context.putImageData(pixels, 0, 0);
}
