/**
 * The answer panel: the predicted digit (large), how sure the model is, the 28x28 image it actually saw,
 * the ten bars, and a spoken summary for screen readers. In number mode: the number (large), each
 * position's most likely digits under it, and the line as the model saw it. data-state on the panel drives
 * its look: empty | sure | unsure | not-digit | not-number | error; a doubtful digit of a number has data-doubtful. The model itself decides sure, unsure or
 * not a digit / number (its `verdict` output), so the page and the server always say the same thing about one drawing.
 */
import { createChart } from './chart.js';

const BYTE_MAX = 255; // canvas channels are bytes
// Under each digit of a number: its most likely readings, best first.
const TOP_READINGS = 3;

/** Wire the panel `root` (the [data-testid=result] section of index.html). */
export function createAnswer(root) {
  const digit = root.querySelector('#digit');
  const number = root.querySelector('#number');
  const caption = root.querySelector('#caption');
  const preview = root.querySelector('#preview');
  const source = root.querySelector('#source');
  const chartElement = root.querySelector('#chart');
  const announcer = root.querySelector('#announcer');
  let chart = null;
  let chartLabels = null;
  let mode = 'digit';

  function setLabels(labels) {
    if (chartLabels?.join() === labels.join()) return;
    chartLabels = labels;
    chart = createChart(chartElement, labels);
  }

  // The page starts with the panel empty: writing what is already there would still cost a slow CPU a
  // style and layout pass, so only what changes is written.
  function reset(state, text) {
    if (root.dataset.state !== state) root.dataset.state = state;
    delete root.dataset.digit;
    delete root.dataset.number;
    delete root.dataset.verdict;
    setText(digit, '');
    if (number.hasChildNodes()) number.replaceChildren();
    number.setAttribute('aria-label', text);
    setText(caption, text);
    setText(source, '');
    chart?.clear();
    root.classList.remove('busy', 'stale', 'has-preview');
  }

  function announce(text) {
    announcer.textContent = text;
  }

  /** Nothing drawn (after Clear, or Predict on a blank pad). */
  function showEmpty({ prompted = false } = {}) {
    const what = mode === 'number' ? 'number' : 'digit';
    reset('empty', `${mode === 'number' ? 'Write' : 'Draw'} a ${what}`);
    if (prompted) announce(`The pad is empty: ${mode === 'number' ? 'write' : 'draw'} a ${what} first.`);
  }

  // A number answer (POST /number's shape, from the page or the server): the number, and under each of its
  // digits the readings the model weighed. The digits the model doubts are marked; after a refusal the best
  // reading still shows, greyed, so the visitor sees what the model made of the ink.
  function showNumber(result) {
    const look = NUMBER_LOOKS[result.verdict] ?? NUMBER_LOOKS.unsure;
    const percent = Math.round(100 * result.confidence);
    root.dataset.state = look.state;
    if (look.state === 'not-number') delete root.dataset.number;
    else root.dataset.number = result.number;
    number.replaceChildren(...result.digits.map((reading, index) => position(reading, index, result.labels)));
    caption.textContent = look.caption(result.number, percent);
    const readings = result.digits.map((reading) => `${result.labels[reading.digit]} ${Math.round(100 * reading.probabilities[reading.digit])}%`);
    number.setAttribute('aria-label', look.state === 'not-number' ? caption.textContent : `${result.number}: ${readings.join(', ')}`);
    announce(look.spoken(result.number));
  }

  return {
    setLabels,
    showEmpty,

    /** 'digit' or 'number': what the panel shows from now on (it starts empty). */
    setMode(next) {
      mode = next;
      if (root.dataset.mode !== next) root.dataset.mode = next;
      showEmpty();
    },

    /** A prediction is running; a quick one finishes before this becomes visible (see style.css). */
    showBusy() {
      root.classList.add('busy');
    },

    /** The drawing changed since the answer shown was computed. */
    showStale() {
      root.classList.add('stale');
    },

    /** Show a prediction from the classifier: a digit, or in number mode a number. */
    showResult(result) {
      root.classList.remove('busy', 'stale');
      root.dataset.verdict = result.verdict;
      root.dataset.backend = result.backend;
      root.dataset.model = result.model;
      // How long the classifier took, read by bench/ (in-page inference, or the round trip to the server).
      root.dataset.milliseconds = result.milliseconds.toFixed(2);
      const where = result.backend === 'browser' ? 'in this browser' : 'by the server';
      source.textContent = `answered ${where} in ${Math.max(1, Math.round(result.milliseconds))} ms`;
      root.classList.toggle('has-preview', Boolean(result.normalized));
      if (result.normalized) paintPreview(preview, result.normalized);
      if (mode === 'number') return showNumber(result);

      setLabels(result.labels);
      const percent = Math.round(100 * result.confidence);
      const look = VERDICT_LOOKS[result.verdict] ?? VERDICT_LOOKS.unsure;
      root.dataset.state = look.state;
      if (look.state === 'not-digit') delete root.dataset.digit;
      else root.dataset.digit = result.label;
      digit.textContent = look.state === 'not-digit' ? '' : result.label;
      caption.textContent = look.caption(result.label, percent);
      chart.show(result.probabilities, look.state === 'not-digit' ? -1 : result.index);
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

// How each of the number reader's verdicts looks and sounds.
const NUMBER_LOOKS = {
  number: { state: 'sure', caption: (_, percent) => `${percent}% sure`, spoken: (number) => `That is ${number}.` },
  unsure: {
    state: 'unsure',
    caption: (number, percent) => `Not sure. Maybe ${number} (${percent}%)`,
    spoken: (number) => `Not sure. Maybe ${number}.`,
  },
  not_number: {
    state: 'not-number',
    caption: () => 'That doesn’t look like a number — try again',
    spoken: () => 'That doesn’t look like a number. Try again.',
  },
};

// One digit of a number, large, with its TOP_READINGS most likely readings under it ("7 98%").
function position(reading, index, labels) {
  const element = document.createElement('div');
  element.className = 'position';
  element.dataset.testid = `position-${index}`;
  element.dataset.digit = labels[reading.digit];
  if (reading.doubtful) element.dataset.doubtful = 'true';
  const shown = document.createElement('span');
  shown.className = 'position-digit';
  shown.textContent = labels[reading.digit];
  const readings = document.createElement('ol');
  readings.className = 'position-readings';
  const ranked = reading.probabilities.map((probability, digit) => ({ probability, digit })).sort((a, b) => b.probability - a.probability);
  for (const { probability, digit } of ranked.slice(0, TOP_READINGS)) {
    const item = document.createElement('li');
    item.dataset.digit = labels[digit];
    item.dataset.probability = String(probability);
    // CSSOM, not a style attribute: the Content-Security-Policy allows no inline styles.
    item.style.setProperty('--probability', probability.toFixed(4));
    item.textContent = `${labels[digit]} ${Math.round(100 * probability)}%`;
    readings.append(item);
  }
  element.append(shown, readings);
  return element;
}

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function describeError(error) {
  if (error.status === 0) return 'The recognizer cannot be reached.';
  if (error.status >= 500) return `The recognizer had a problem (error ${error.status}).`;
  return error.message ? `${error.message[0].toUpperCase()}${error.message.slice(1)}.` : 'Something went wrong.';
}

// The model's `normalized` output: the 28x28 image its CNN saw (28 x W for a number), values 0..1, drawn white on black.
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
