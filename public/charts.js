// Charts through uPlot (served at /vendor/uplot.min.js, a global `uPlot`): time series with axes,
// units, hover values in the legend and threshold lines (dashed, across the whole plot, drawn by a
// draw hook: a series would only span the readings); bars; step timelines.
// Colours come from the theme's CSS variables, and charts are rebuilt when the theme changes.
const charts = new Set();
const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
export const palette = () => ({ fg: css('--fg'), muted: css('--muted'), grid: css('--grid'), lines: [css('--chart-1'), css('--chart-2'), css('--chart-3'), css('--chart-4')], ok: css('--ok'), bad: css('--bad'), warn: css('--warn') });

/** Room for the widest tick label, so the axis title never overlaps the values. */
const fit = (_u, values) => (values ? Math.max(...values.map((v) => String(v ?? '').length)) : 4) * 7 + 30;

function axis(p, label, values) {
  return { label, stroke: p.muted, labelFont: '600 12px system-ui, sans-serif', font: '11px system-ui, sans-serif', grid: { stroke: p.grid, width: 1 }, ticks: { stroke: p.grid, width: 1 }, ...(values ? { values } : {}) };
}

/**
 * A chart bound to a container: it follows the container's width, keeps its data across a
 * rebuild (theme change) and is dropped with destroy().
 */
function mount(container, build, height) {
  let data = null;
  let plot = null;
  const make = () => {
    plot?.destroy();
    const opts = build(palette());
    plot = new uPlot({ width: Math.max(200, container.clientWidth), height, ...opts }, data ?? opts.empty, container);
  };
  const observer = new ResizeObserver(() => {
    const width = Math.max(200, container.clientWidth);
    if (plot && Math.abs(plot.width - width) > 1) plot.setSize({ width, height });
  });
  // The canvas says nothing to a screen reader: its axes (as uPlot draws them) and size, in words.
  const describe = () => {
    const [x, y] = plot.axes.map((a) => a.label ?? '');
    const n = plot.data[0]?.length ?? 0;
    plot.root.setAttribute('role', 'img');
    plot.root.setAttribute('aria-label', `${y} against ${x}, ${n} point${n === 1 ? '' : 's'}`);
    container.dataset.axes = JSON.stringify([x, y]);
  };
  make();
  describe();
  observer.observe(container);
  const chart = {
    setData(d) {
      data = d;
      plot.setData(d);
      // Away from the cursor, the legend shows the latest values (with their units) rather than dashes.
      if (d[0]?.length > 0 && plot.cursor.idx == null) plot.setLegend({ idx: d[0].length - 1 });
      describe();
    },
    rebuild() {
      make();
      describe();
    },
    destroy() {
      observer.disconnect();
      plot?.destroy();
      charts.delete(chart);
    },
    get plot() {
      return plot;
    },
  };
  charts.add(chart);
  return chart;
}

document.addEventListener('vigil-theme', () => {
  for (const c of charts) c.rebuild();
});

/**
 * Threshold lines from the plot's left edge to its right edge (not only over the readings: a young
 * device's one reading would make a dot), at each threshold series' newest value (its `value`
 * before any data). The lines drawn are told in the container's data-thresholds (CSS pixels of the
 * canvas), for tests.
 */
function thresholdHook(container, thresholds, first, color) {
  return (u) => {
    const { ctx, bbox } = u;
    const drawn = [];
    for (const [i, t] of thresholds.entries()) {
      const values = u.data[first + i] ?? [];
      const value = values.length > 0 ? values[values.length - 1] : t.value;
      if (typeof value !== 'number' || !u.series[first + i].show) continue;
      const y = Math.round(u.valToPos(value, 'y', true)) + 0.5;
      if (y < bbox.top || y > bbox.top + bbox.height) continue;
      ctx.save();
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5 * devicePixelRatio;
      ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
      ctx.beginPath();
      ctx.moveTo(bbox.left, y);
      ctx.lineTo(bbox.left + bbox.width, y);
      ctx.stroke();
      ctx.restore();
      drawn.push({ value, y: y / devicePixelRatio, left: bbox.left / devicePixelRatio, width: bbox.width / devicePixelRatio });
    }
    container.dataset.thresholds = JSON.stringify(drawn);
  };
}

/**
 * A time series: `series` [{label, unit?}], `thresholds` [{label, value}] drawn as dashed lines across
 * the plot; data [[unix seconds…], [values…] per series, [threshold values…]] (the threshold series
 * give the legend its value and the y scale its room; the draw hook draws them).
 * `format(v)` shows a value with its unit.
 */
export function timeChart(container, { yLabel, series, thresholds = [], format, range, window, height = 220 }) {
  return mount(container, (p) => ({
    // The x axis spans the chosen window (`window()` → [from, to] in seconds), even with few points.
    scales: { x: window ? { time: true, range: () => window() } : { time: true }, y: range ? { range } : { auto: true } },
    axes: [axis(p, 'Local time'), { ...axis(p, yLabel, (_u, ticks) => ticks.map((t) => format(t))), size: fit }],
    series: [
      { label: 'Time', value: (_u, ts) => (ts === null ? '—' : new Date(ts * 1000).toLocaleString()) },
      ...series.map((s, i) => ({ label: s.label, stroke: p.lines[i % p.lines.length], width: 2, spanGaps: true, value: (_u, v) => format(v), points: { show: false }, ...(s.fill ? { fill: `${p.lines[i % p.lines.length]}22` } : {}) })),
      ...thresholds.map((t) => ({ label: t.label, stroke: p.bad, dash: [6, 4], width: 1.5, paths: () => null, points: { show: false }, value: (_u, v) => format(v ?? t.value) })),
    ],
    hooks: { draw: [thresholdHook(container, thresholds, 1 + series.length, p.bad)] },
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
    empty: [[], ...series.map(() => []), ...thresholds.map(() => [])],
  }), height);
}

/** Bars over named categories, e.g. the score distribution. */
export function barChart(container, { categories, yLabel, xLabel, color = '--chart-1', height = 180 }) {
  return mount(container, (p) => ({
    scales: { x: { time: false, range: [-0.6, categories.length - 0.4] }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.15)] } },
    axes: [
      axis(p, xLabel, (_u, ticks) => ticks.map((t) => categories[t] ?? '')),
      { ...axis(p, yLabel, (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? t.toLocaleString() : ''))), size: fit },
    ],
    series: [
      { label: xLabel, value: (_u, v) => categories[v] ?? '—' },
      { label: yLabel, stroke: css(color), fill: `${css(color)}cc`, width: 0, paths: uPlot.paths.bars({ size: [0.7, 80] }), points: { show: false } },
    ],
    cursor: { points: { show: false } },
    empty: [categories.map((_c, i) => i), categories.map(() => 0)],
  }), height);
}

/** Two counts over time (online, offline). */
export function countsChart(container, { labels, height = 180 }) {
  // At least the last 5 min: a single sample would otherwise stretch the time axis over years.
  const span = (_u, min, max) => {
    const now = Date.now() / 1000;
    return [Math.min(min ?? now, now - 300), Math.max(max ?? now, now)];
  };
  return mount(container, (p) => ({
    scales: { x: { time: true, range: span }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [axis(p, 'Local time'), { ...axis(p, 'Devices', (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? t.toLocaleString() : ''))), size: fit }],
    series: [
      { label: 'Time', value: (_u, ts) => (ts === null ? '—' : new Date(ts * 1000).toLocaleTimeString()) },
      { label: labels[0], stroke: p.ok, width: 2, fill: `${p.ok}22`, points: { show: false } },
      { label: labels[1], stroke: p.bad, width: 2, points: { show: false } },
    ],
    empty: [[], [], []],
  }), height);
}

/**
 * A status timeline: one Status series (1 online, 0 offline, null unknown: no line) drawn as steps;
 * the offline spans are filled by a draw hook, so the legend has one entry with one value.
 */
export function statusChart(container, { from, to, height = 120 }) {
  const offlineSpans = (color) => (u) => {
    const [xs, ys] = u.data;
    const { ctx, bbox } = u;
    ctx.save();
    ctx.fillStyle = `${color}55`;
    for (let i = 0; i < xs.length - 1; i++) {
      if (ys[i] !== 0) continue;
      const x0 = Math.max(bbox.left, u.valToPos(xs[i], 'x', true));
      const x1 = Math.min(bbox.left + bbox.width, u.valToPos(xs[i + 1], 'x', true));
      if (x1 > x0) ctx.fillRect(x0, bbox.top, x1 - x0, bbox.height);
    }
    ctx.restore();
  };
  return mount(container, (p) => ({
    scales: { x: { time: true, range: () => [from() / 1000, to() / 1000] }, y: { range: [0, 1.05] } },
    axes: [axis(p, 'Local time'), { ...axis(p, 'Status', (_u, ticks) => ticks.map((t) => (t === 1 ? 'online' : t === 0 ? 'offline' : ''))), splits: () => [0, 1], size: 80 }],
    series: [
      { label: 'Time', value: (_u, ts) => (ts === null ? '—' : new Date(ts * 1000).toLocaleString()) },
      { label: 'Status', stroke: p.ok, fill: `${p.ok}55`, width: 1.5, paths: uPlot.paths.stepped({ align: 1 }), points: { show: false }, value: (_u, v) => (v === 1 ? 'online' : v === 0 ? 'offline' : 'unknown') },
    ],
    hooks: { drawSeries: [offlineSpans(p.bad)] },
    empty: [[], []],
  }), height);
}
