// A small bar chart as inline SVG, from the API's numbers (no library, no build step). Bars are
// stacked per hour: succeeded (2xx) below, failed above. Labels are text nodes, like everything else.

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * buckets: [{start, succeeded, failed}] oldest first. Returns an <svg> with role=img, a summary in
 * its <title>, one <g class="bar"> per hour (data-succeeded / data-failed / a <title> tooltip).
 */
export function attemptsChart(buckets, { width = 720, height = 160 } = {}) {
  const pad = { left: 36, right: 8, top: 8, bottom: 22 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const max = Math.max(1, ...buckets.map((b) => b.succeeded + b.failed));
  const ok = buckets.reduce((n, b) => n + b.succeeded, 0);
  const failed = buckets.reduce((n, b) => n + b.failed, 0);
  const rate = ok + failed === 0 ? 'no attempts' : `${((ok / (ok + failed)) * 100).toFixed(1)} % succeeded`;
  const summary = `${ok + failed} attempts in ${buckets.length} h, ${rate}`;

  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
    class: 'chart',
    id: 'attempts-chart',
    'aria-label': summary,
  });
  root.append(svg('title', {}, summary));
  const y = (n) => pad.top + plotH - (n / max) * plotH;
  root.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0), class: 'axis' }));
  root.append(
    svg('text', { x: pad.left - 4, y: y(max) + 4, 'text-anchor': 'end', class: 'tick' }, String(max)),
  );
  root.append(svg('text', { x: pad.left - 4, y: y(0), 'text-anchor': 'end', class: 'tick' }, '0'));

  const step = plotW / Math.max(1, buckets.length);
  const barW = Math.max(1, step * 0.8);
  buckets.forEach((b, i) => {
    const x = pad.left + i * step + (step - barW) / 2;
    const hour = b.start.slice(11, 16);
    const g = svg('g', { class: 'bar', 'data-succeeded': b.succeeded, 'data-failed': b.failed });
    g.append(
      svg(
        'title',
        {},
        `${b.start.slice(0, 16).replace('T', ' ')} UTC: ${b.succeeded} ok, ${b.failed} failed`,
      ),
    );
    g.append(svg('rect', { x, width: barW, y: y(b.succeeded), height: y(0) - y(b.succeeded), class: 'ok' }));
    g.append(
      svg('rect', {
        x,
        width: barW,
        y: y(b.succeeded + b.failed),
        height: y(b.succeeded) - y(b.succeeded + b.failed),
        class: 'failed',
      }),
    );
    root.append(g);
    // An hour label every 6 bars (and the last), so they do not overlap.
    if (i % 6 === 0 || i === buckets.length - 1)
      root.append(
        svg('text', { x: x + barW / 2, y: height - 6, 'text-anchor': 'middle', class: 'tick' }, hour),
      );
  });
  return root;
}
