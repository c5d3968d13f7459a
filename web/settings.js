/**
 * Kiosk settings, read from the page's address so a kiosk's command line can set them:
 * /?mode=number reads whole numbers instead of one digit, /?auto=0 turns auto-predict off, ?delay=800 waits
 * 800 ms after the last stroke (in either mode), ?idle=60 clears an abandoned drawing after a minute (?idle=0
 * never does), ?feedback=0 hides the Right / Wrong buttons.
 */

/** What the page reads: one digit, or a number of several digits written left to right. */
export const MODES = Object.freeze(['digit', 'number']);

export const DEFAULTS = Object.freeze({
  mode: 'digit',
  autoPredict: true,
  // Long enough to start the next stroke of a 4 or a 7, short enough to feel immediate.
  autoPredictDelayMs: 600,
  // People lift the pen between the digits of a number, and take longer over the next one than over a stroke.
  numberAutoPredictDelayMs: 900,
  // Long enough not to wipe the drawing of someone who is merely thinking.
  idleClearSeconds: 45,
  feedback: true,
});

/** Settings from a query string such as location.search; bad values fall back to the defaults. */
export function readSettings(search) {
  const query = new URLSearchParams(search);
  const number = (name, fallback) => {
    const value = Number(query.get(name));
    return query.has(name) && Number.isFinite(value) && value >= 0 ? value : fallback;
  };
  const flag = (name, fallback) => (query.has(name) ? !['0', 'false', 'off'].includes(query.get(name)) : fallback);
  return {
    mode: MODES.includes(query.get('mode')) ? query.get('mode') : DEFAULTS.mode,
    autoPredict: flag('auto', DEFAULTS.autoPredict),
    feedback: flag('feedback', DEFAULTS.feedback),
    autoPredictDelayMs: number('delay', DEFAULTS.autoPredictDelayMs),
    numberAutoPredictDelayMs: number('delay', DEFAULTS.numberAutoPredictDelayMs),
    idleClearSeconds: number('idle', DEFAULTS.idleClearSeconds),
  };
}

/** The page's address `href` showing `mode`, so a reload (or a kiosk's saved address) keeps it. */
export function addressWithMode(href, mode) {
  const url = new URL(href);
  if (mode === DEFAULTS.mode) url.searchParams.delete('mode');
  else url.searchParams.set('mode', mode);
  return url.href;
}
