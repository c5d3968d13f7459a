/** The ten bars: one per label, its height the model's probability, the predicted one highlighted. */

/** Build one bar per label inside `container`. */
export function createChart(container, labels) {
  const bars = labels.map((label, index) => {
    const bar = document.createElement('div');
    bar.className = 'bar';
    bar.dataset.testid = `bar-${index}`;
    bar.dataset.probability = '0';
    const fill = document.createElement('span');
    fill.className = 'bar-fill';
    const name = document.createElement('span');
    name.className = 'bar-label';
    name.textContent = label;
    bar.append(fill, name);
    return bar;
  });
  // Built off the document and put in at once: one change for the next frame's style and layout.
  container.replaceChildren(...bars);

  return {
    /** Show `probabilities` (one per label) and highlight the bar at `predicted`. */
    show(probabilities, predicted) {
      bars.forEach((bar, index) => {
        const probability = probabilities[index];
        bar.dataset.probability = String(probability);
        bar.classList.toggle('predicted', index === predicted);
        // CSSOM, not a style attribute: the Content-Security-Policy allows no inline styles.
        bar.style.setProperty('--probability', probability.toFixed(4));
      });
      container.setAttribute(
        'aria-label',
        labels.map((label, index) => `${label}: ${Math.round(100 * probabilities[index])}%`).join(', '),
      );
    },
    clear() {
      for (const bar of bars) {
        bar.dataset.probability = '0';
        bar.classList.remove('predicted');
        bar.style.setProperty('--probability', '0');
      }
      container.removeAttribute('aria-label');
    },
  };
}
