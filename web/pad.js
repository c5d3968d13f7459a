/**
 * The drawing pad: white ink on a black canvas, drawn with Pointer Events so mouse, finger and pen all work.
 * Strokes are kept in pad units (0..1 of the canvas box), with each sample's time in ms since the drawing
 * began, and painted in device pixels, so the drawing stays crisp at any devicePixelRatio and survives a
 * resize or a rotation of the screen.
 */

const INK = '#fff';
const BACKGROUND = '#000';
const BYTE_MAX = 255; // canvas channels are bytes

/**
 * Build a pad on `canvas`; `onStrokeStart`/`onStrokeEnd` let the page time its auto-predict. `penWidth` (null
 * until known: strokes are then kept and inked once setPenWidth gives it) is the manifest's pad.pen_width (reader/contract.py PAD_PEN_WIDTH): MNIST strokes are about a sixth of the digit's
 * height and a digit fills most of the pad, so the line width follows the pad's size rather than the
 * pointer's: this share of its shorter side, which on the wide number pad is the height of a digit too, so
 * a number's digits are inked as a single digit is.
 */
export function createPad(canvas, { penWidth, onStrokeStart = () => {}, onStrokeEnd = () => {} }) {
  const context = canvas.getContext('2d', { alpha: false });
  const strokes = [];
  let activePointer = null;
  let frame = 0;
  let startTime = 0;

  function toPadUnits(event) {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height, event.timeStamp - startTime];
  }

  function setPen() {
    context.lineWidth = (penWidth ?? 0) * Math.min(canvas.width, canvas.height);
    context.lineCap = 'round';
    context.lineJoin = 'round';
    context.strokeStyle = INK;
    context.fillStyle = INK;
  }

  function toPixels([x, y]) {
    return [x * canvas.width, y * canvas.height];
  }

  // Each stroke is one path of quadratic curves through the midpoints of its samples: smooth, with round
  // joins and no seams. Repainting everything is cheap (a digit is a few hundred points).
  function paintStroke(stroke) {
    const points = stroke.map(toPixels);
    context.beginPath();
    if (points.length === 1) {
      context.arc(...points[0], context.lineWidth / 2, 0, 2 * Math.PI);
      context.fill();
      return;
    }
    context.moveTo(...points[0]);
    for (let index = 1; index < points.length - 1; index++) {
      context.quadraticCurveTo(...points[index], ...midpoint(points[index], points[index + 1]));
    }
    context.lineTo(...points.at(-1));
    context.stroke();
  }

  function paint() {
    cancelAnimationFrame(frame);
    frame = 0;
    context.fillStyle = BACKGROUND;
    context.fillRect(0, 0, canvas.width, canvas.height);
    setPen();
    // Until the page knows its pen (a first visit, before the manifest), strokes are kept and inked later.
    if (penWidth) strokes.forEach(paintStroke);
  }

  // Pointer events can outpace the screen; paint once per frame.
  function requestPaint() {
    if (!frame) frame = requestAnimationFrame(paint);
  }

  function endStroke(event) {
    if (event.pointerId !== activePointer) return;
    activePointer = null;
    paint();
    onStrokeEnd();
  }

  canvas.addEventListener('pointerdown', (event) => {
    // One finger draws; a second one resting on the glass, or a right click, does not.
    if (activePointer !== null || (event.pointerType === 'mouse' && event.button !== 0)) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    activePointer = event.pointerId;
    if (!strokes.length) startTime = event.timeStamp;
    strokes.push([toPadUnits(event)]);
    requestPaint();
    onStrokeStart();
  });
  canvas.addEventListener('pointermove', (event) => {
    if (event.pointerId !== activePointer) return;
    const stroke = strokes.at(-1);
    for (const sample of event.getCoalescedEvents?.() ?? [event]) stroke.push(toPadUnits(sample));
    requestPaint();
  });
  canvas.addEventListener('pointerup', endStroke);
  canvas.addEventListener('pointercancel', endStroke);
  canvas.addEventListener('lostpointercapture', endStroke);
  // A long press is a slow dot, not a request for a menu.
  canvas.addEventListener('contextmenu', (event) => event.preventDefault());

  // Size the bitmap to the device pixels the canvas covers, so ink is never blurred by scaling.
  const observer = new ResizeObserver(([entry]) => {
    const width = devicePixels(entry.contentRect.width, entry.devicePixelContentBoxSize?.[0].inlineSize);
    const height = devicePixels(entry.contentRect.height, entry.devicePixelContentBoxSize?.[0].blockSize);
    if (width === canvas.width && height === canvas.height) return;
    canvas.width = width;
    canvas.height = height;
    paint();
  });
  try {
    // This box also reports a change of devicePixelRatio (browser zoom, another screen).
    observer.observe(canvas, { box: 'device-pixel-content-box' });
  } catch {
    observer.observe(canvas);
  }
  paint();

  return {
    clear() {
      strokes.length = 0;
      activePointer = null;
      paint();
    },
    isEmpty: () => strokes.length === 0,
    /** A copy of the strokes: [[[x, y, t], ...], ...], x and y in pad units, t in ms since the first touch. */
    strokes: () => strokes.map((stroke) => stroke.map(([x, y, t]) => [round(x, 4), round(y, 4), round(t, 1)])),
    isDrawing: () => activePointer !== null,
    /** Ink with the manifest's pad.pen_width from now on, the strokes so far included. */
    setPenWidth(width) {
      penWidth = width;
      paint();
    },
  };
}

/**
 * The pad's pixels as the model's input: one float per pixel (`ink` where white, `background` where black),
 * row by row, scaled down so the longer side is at most `maxSide` pixels.
 */
export function readPixels(canvas, { maxSide, ink = 1, background = 0 }) {
  const scale = Math.min(1, maxSide / Math.max(canvas.width, canvas.height));
  const width = Math.max(1, Math.round(canvas.width * scale));
  const height = Math.max(1, Math.round(canvas.height * scale));
  const context = scratchContext(width, height);
  context.drawImage(canvas, 0, 0, width, height);
  const rgba = context.getImageData(0, 0, width, height).data;
  const data = new Float32Array(width * height);
  for (let index = 0; index < data.length; index++) {
    data[index] = background + ((ink - background) * rgba[4 * index]) / BYTE_MAX;
  }
  return { data, height, width };
}

// One small canvas, reused, to scale the pad down and read it back (a new one per prediction costs more).
let scratch = null;
function scratchContext(width, height) {
  scratch ??= document.createElement('canvas').getContext('2d', { willReadFrequently: true });
  if (scratch.canvas.width !== width || scratch.canvas.height !== height) {
    scratch.canvas.width = width;
    scratch.canvas.height = height;
  }
  scratch.imageSmoothingQuality = 'high';
  return scratch;
}

// devicePixelContentBoxSize is exact where it is right; Chromium's device emulation leaves it in CSS pixels.
function devicePixels(cssSize, exact) {
  const estimate = Math.max(1, Math.round(cssSize * devicePixelRatio));
  return exact && Math.abs(exact - estimate) <= 1 ? exact : estimate;
}

function round(value, digits) {
  return Math.round(value * 10 ** digits) / 10 ** digits;
}

function midpoint([x1, y1], [x2, y2]) {
  return [(x1 + x2) / 2, (y1 + y2) / 2];
}
