/**
 * Kiosk settings, read from the page's address so a kiosk's command line can set them:
 * /?auto=0 turns auto-predict off, ?delay=800 waits 800 ms after the last stroke, ?idle=60 clears an
 * abandoned drawing after a minute (?idle=0 never does), ?feedback=0 hides the Right / Wrong buttons.
 */

export const DEFAULTS = Object.freeze({
  autoPredict: true,
  // Long enough to start the next stroke of a 4 or a 7, short enough to feel immediate.
  autoPredictDelayMs: 600,
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
    autoPredict: flag('auto', DEFAULTS.autoPredict),
    feedback: flag('feedback', DEFAULTS.feedback),
    autoPredictDelayMs: number('delay', DEFAULTS.autoPredictDelayMs),
    idleClearSeconds: number('idle', DEFAULTS.idleClearSeconds),
  };
}
