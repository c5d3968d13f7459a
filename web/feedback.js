/**
 * The visitor's feedback on an answer: "Right" confirms it, "Wrong" opens a picker of the digits and
 * "not a digit", and one tap stores the drawing with its label (through the offline queue). In number mode
 * "Wrong" opens a keypad instead: the visitor types the number written (Save), or taps "not a number".
 * Nothing is stored without a tap, one answer takes one entry, and the panel never covers the pad.
 */

const NOT_DIGIT = 'not_digit';
const NOT_NUMBER = 'not_number';
// Numbers as long as the number reader is trained and measured on (reader/contract.py MAX_NUMBER_DIGITS).
const MAX_TYPED_DIGITS = 8;
// What the server takes (docs/API.md, POST /feedback): pads of at most this many pixels a side (the digit pad,
// and the number pad three times as wide), and strokes within these bounds; longer strokes are left out rather
// than have the entry refused.
const MAX_IMAGE_SIDES = { digit: 280, number: 3 * 280 };
const MAX_STROKES = 64;
const MAX_POINTS = 8192;
const THANKS = 'Thank you!';

/** Wire the panel `root` (#feedback in index.html); `queue` is a createFeedbackQueue(). `offer` takes the pad's
 * canvas and its strokes. */
export function createFeedback(root, { queue }) {
  const right = root.querySelector('[data-testid="right"]');
  const wrong = root.querySelector('[data-testid="wrong"]');
  const picker = root.querySelector('#feedback-picker');
  const thanks = root.querySelector('#feedback-thanks');
  let current = null; // {result, image} of the answer on screen, until it has its entry
  let enabled = true;
  let mode = 'digit';
  let pickerLabels = null;
  let typed = null; // the number keypad's display, in number mode

  function setLabels(labels) {
    if (pickerLabels?.join() === labels.join() && picker.dataset.mode === mode) return;
    pickerLabels = labels;
    picker.dataset.mode = mode;
    if (mode === 'number') return buildKeypad(labels);
    typed = null;
    const buttons = [...labels.map((label) => labelButton(label, label, `It is a ${label}`)),
      labelButton(NOT_DIGIT, 'Not a digit', 'It is not a digit')];
    buttons.at(-1).classList.add('wide');
    picker.replaceChildren(...buttons);
  }

  // The number written, typed on keys (a kiosk has no keyboard): delete, Save, the digits, and "not a number".
  function buildKeypad(labels) {
    typed = document.createElement('output');
    typed.className = 'typed-number';
    typed.dataset.testid = 'typed-number';
    typed.setAttribute('aria-label', 'The number you wrote');
    const keys = labels.map((label) => keyButton(`key-${label}`, label, label, (key) => type(key.dataset.key)));
    keys.forEach((key) => (key.dataset.key = key.textContent));
    const erase = keyButton('key-delete', '⌫', 'Delete the last digit', () => setTyped(typed.value.slice(0, -1)));
    const save = keyButton('save-number', 'Save', 'Save this number', () => typed.value && store(typed.value));
    save.classList.add('primary');
    const notNumber = labelButton(NOT_NUMBER, 'Not a number', 'It is not a number');
    notNumber.classList.add('wide');
    picker.replaceChildren(typed, erase, save, ...keys, notNumber);
    setTyped('');
  }

  function keyButton(testid, text, spoken, onClick) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'button feedback-label';
    button.dataset.testid = testid;
    button.textContent = text;
    button.setAttribute('aria-label', spoken);
    button.addEventListener('click', onClick.bind(null, button));
    return button;
  }

  function type(digit) {
    if (typed.value.length < MAX_TYPED_DIGITS) setTyped(typed.value + digit);
  }

  function setTyped(value) {
    typed.value = value;
    picker.querySelector('[data-testid="save-number"]').disabled = !value;
  }

  function labelButton(label, text, spoken) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'button feedback-label';
    button.dataset.testid = { [NOT_DIGIT]: 'label-not-digit', [NOT_NUMBER]: 'label-not-number' }[label] ?? `label-${label}`;
    button.dataset.label = label;
    button.textContent = text;
    button.setAttribute('aria-label', spoken);
    return button;
  }

  function showPicker(open) {
    picker.hidden = !open;
    wrong.setAttribute('aria-expanded', String(open));
    root.closest('[data-testid="result"]')?.classList.toggle('picking', open);
  }

  function hide() {
    current = null;
    root.hidden = true;
    showPicker(false);
  }

  async function store(label) {
    if (!current) return;
    const { result, image, strokes } = current;
    current = null; // one answer, one entry, however fast the taps come
    showPicker(false);
    root.dataset.state = 'thanked';
    thanks.textContent = THANKS;
    // A number is kept as the string written ("007" is not 7); a digit as the integer.
    const predicted = mode === 'number' ? result.number : Number(result.label);
    const entry = { id: newId(), ...(mode === 'number' && { mode }), model: result.model, predicted, verdict: result.verdict, label, image };
    if (strokes) entry.strokes = strokes;
    try {
      await queue.add(entry);
      root.dataset.lastId = entry.id;
    } catch (error) {
      console.warn('feedback not kept:', error.message);
    }
  }

  right.addEventListener('click', () => {
    if (!current) return;
    const { verdict, label, number } = current.result;
    if (mode === 'number') store(verdict === NOT_NUMBER ? NOT_NUMBER : number);
    else store(verdict === NOT_DIGIT ? NOT_DIGIT : Number(label));
  });
  wrong.addEventListener('click', () => {
    if (!current) return;
    if (typed) setTyped('');
    showPicker(picker.hidden);
    if (!picker.hidden) picker.querySelector('button')?.focus();
  });
  picker.addEventListener('click', (event) => {
    const label = event.target.closest('button')?.dataset.label;
    if (label === undefined) return;
    store([NOT_DIGIT, NOT_NUMBER].includes(label) ? label : Number(label));
  });

  return {
    setLabels,

    /** 'digit' or 'number': what the answers are, and so what the picker offers; `labels` are the digits' labels. */
    setMode(next, labels) {
      mode = next;
      hide();
      if (labels) setLabels(labels);
    },

    /** Whether to offer feedback at all (the page's ?feedback=0, or a server that takes none). */
    setEnabled(value) {
      enabled = value;
      root.closest('[data-testid="result"]').dataset.feedback = value ? 'on' : 'off';
      if (!value) hide();
    },

    /** Offer Right / Wrong for `result`, the answer now on screen for the drawing on `pad` (made of `strokes`). */
    offer(result, pad, strokes = null) {
      if (!enabled) return;
      current = { result, image: padPng(pad, MAX_IMAGE_SIDES[mode]), strokes: withinBounds(strokes) };
      root.hidden = false;
      root.dataset.state = 'asking';
      thanks.textContent = '';
      showPicker(false);
    },

    /** The answer on screen is gone or out of date (a new stroke, Clear). */
    withdraw: hide,
  };
}

function withinBounds(strokes) {
  const points = strokes?.reduce((total, stroke) => total + stroke.length, 0) ?? 0;
  return strokes && strokes.length <= MAX_STROKES && points <= MAX_POINTS ? strokes : null;
}

/** The pad as a PNG data URL, scaled down to at most `maxSide` pixels a side. */
export function padPng(canvas, maxSide = MAX_IMAGE_SIDES.digit) {
  const scale = Math.min(1, maxSide / Math.max(canvas.width, canvas.height));
  const copy = document.createElement('canvas');
  copy.width = Math.max(1, Math.round(canvas.width * scale));
  copy.height = Math.max(1, Math.round(canvas.height * scale));
  const context = copy.getContext('2d');
  context.imageSmoothingQuality = 'high';
  context.drawImage(canvas, 0, 0, copy.width, copy.height);
  return copy.toDataURL('image/png');
}

/** A random (version 4) UUID; crypto.randomUUID only exists on https or localhost pages. */
export function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** What the server says of feedback: `state` 'on', 'off', 'unavailable' (its store cannot be used now; it tries
 * again in `retryAfterMs`), or 'unknown' (offline, or an error: the page keeps its buttons and queues). */
export async function feedbackState(url = '/feedback') {
  try {
    const response = await fetch(url, { cache: 'no-cache' });
    if (!response.ok) return { state: 'unknown' };
    const { feedback } = await response.json();
    const seconds = Number(response.headers.get('retry-after'));
    return { state: feedback, retryAfterMs: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined };
  } catch {
    return { state: 'unknown' };
  }
}

// While the server's store is unavailable, ask again this often at least (and at most this rarely).
const RECHECK_MS = { least: 5000, most: 300000, otherwise: 30000 };

/** Ask the server whether it takes feedback, and again while it says 'unavailable'; `onChange(takes)` hears each
 * answer. `check()` asks now (say after a 503). */
export function watchFeedback(onChange, url = '/feedback') {
  let timer = 0;
  async function check() {
    clearTimeout(timer);
    const { state, retryAfterMs } = await feedbackState(url);
    onChange(state !== 'off' && state !== 'unavailable', state);
    if (state === 'unavailable') {
      timer = setTimeout(check, Math.min(Math.max(retryAfterMs ?? RECHECK_MS.otherwise, RECHECK_MS.least), RECHECK_MS.most));
    }
  }
  check();
  return { check };
}
