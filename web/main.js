/**
 * The kiosk page's first script, kept small so that the pad takes ink and the buttons answer at once, even
 * on a slow CPU: it wires them, then loads the rest of the page (kiosk.js), which their listeners wait for.
 * The pads' sizes and pen come from the manifest; the last ones seen are kept in localStorage, so that a
 * reload inks before the manifest is fetched again (a first visit is wired once it is).
 */
import { startInferenceWorker } from './inference.js';
import { createPad } from './pad.js';
import { readSettings } from './settings.js';

const PAD_KEY = 'pad'; // localStorage: the manifest's "pad" last seen

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
const storedPad = readStoredPad();
elements.kiosk.dataset.mode = settings.mode;
elements.autoPredict.checked = settings.autoPredict;
if (storedPad) setPadGeometry(storedPad);

let kiosk = null; // kiosk.js's startKiosk(), once the rest of the page has loaded
const pad = createPad(elements.pad, {
  penWidth: storedPad?.pen_width ?? null,
  onStrokeStart: () => later((page) => page.onStrokeStart()),
  onStrokeEnd: () => later((page) => page.onStrokeEnd()),
});
// On a reload onnxruntime-web starts loading in its worker at once, while the rest of the page and the manifest
// load. A first visit leaves the CPU to those (the pad waits for the manifest) and starts it with the first reader.
if (storedPad) startInferenceWorker();
const loaded = import('./kiosk.js').then((module) => module.startKiosk({ pad, settings, elements, rememberPad }));
loaded.then((page) => (kiosk = page));

// Now when the page has loaded, else as soon as it has.
function later(action) {
  if (kiosk) action(kiosk);
  else loaded.then(action);
}

// Before the rest has loaded there is no answer to clear, and a stroke drawn after this press must stay.
function clear() {
  if (kiosk) kiosk.clearAll();
  else pad.clear();
}

/** Size the pads and their pen from the manifest's "pad", and keep it for the next start. */
function rememberPad(geometry) {
  setPadGeometry(geometry);
  pad.setPenWidth(geometry.pen_width);
  markWired();
  try {
    localStorage.setItem(PAD_KEY, JSON.stringify(geometry));
  } catch {} // no storage (private mode, quota): the next start waits for the manifest, as a first visit does
}

function readStoredPad() {
  try {
    const geometry = JSON.parse(localStorage.getItem(PAD_KEY));
    return geometry?.pen_width > 0 ? geometry : null;
  } catch {
    return null;
  }
}

// style.css lays the pads out from their design size in CSS pixels and keeps their aspect. A value already
// set (a reload's stored pad, then the manifest's) is not set again: every element inherits these properties,
// so a change restyles the whole page.
function setPadGeometry(pads) {
  const { style } = elements.kiosk;
  const set = (name, value) => style.getPropertyValue(name) !== value && style.setProperty(name, value);
  for (const [mode, { width, height }] of Object.entries(pads).filter(([, size]) => size.width)) {
    set(`--${mode}-pad-design-height`, `${height}px`);
    set(`--${mode}-pad-aspect`, String(width / height));
  }
}

elements.predict.addEventListener('click', () => later((page) => page.predict()));
elements.clear.addEventListener('click', clear);
for (const button of elements.modes) button.addEventListener('click', () => later((page) => page.setMode(button.dataset.mode)));
document.addEventListener('pointerdown', () => later((page) => page.restartIdleTimer()));
// A long press or a right click anywhere must not open Chromium's menu (Back, Reload, Print, Inspect):
// even in --kiosk that menu is a way out of the page.
document.addEventListener('contextmenu', (event) => event.preventDefault());
document.addEventListener('keydown', (event) => {
  later((page) => page.restartIdleTimer());
  if (event.key === 'Escape') clear();
  // A focused button or switch handles Enter itself.
  if (event.key === 'Enter' && !event.target.closest('button, input')) later((page) => page.predict());
});
if (storedPad) markWired();

// The pad takes ink (it knows its size and pen) and the buttons answer from here on (tests and bench/ wait for this).
function markWired() {
  if (document.documentElement.dataset.page === 'wired') return;
  document.documentElement.dataset.page = 'wired';
  performance.mark('page:wired');
}
