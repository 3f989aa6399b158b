// Hand-drawn SVG charts: no dependency. Every function returns an <svg> element sized by its
// viewBox (CSS scales it to the container). Text goes through textContent, never markup.

const NS = 'http://www.w3.org/2000/svg';
const W = 420;
const H = 320;
const M = { top: 16, right: 16, bottom: 44, left: 58 };
export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

const text = (x, y, s, attrs = {}) => {
  const t = svg('text', { x, y, ...attrs });
  t.textContent = s;
  return t;
};

function root(name, title, w = W, h = H) {
  const el = svg('svg', { viewBox: `0 0 ${w} ${h}`, class: `chart ${name}`, role: 'img', 'data-testid': name, 'aria-label': title });
  const t = svg('title');
  t.textContent = title;
  el.append(t);
  return el;
}

/** "Nice" ticks over [lo, hi]. */
export function ticks(lo, hi, count = 5) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) return [lo];
  const span = hi - lo;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => span / s <= count) ?? 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

export function formatNumber(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
  if (a >= 1000) return v.toLocaleString('en-US', { maximumFractionDigits: 0 });
  return String(Number(v.toPrecision(4)));
}

function extent(values, pad = 0) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) return [lo - 1, hi + 1];
  const p = (hi - lo) * pad;
  return [lo - p, hi + p];
}

function scale(d0, d1, r0, r1) {
  return (v) => r0 + ((v - d0) / (d1 - d0 || 1)) * (r1 - r0);
}

/** Axes with grid lines and labels; returns the scales. */
function frame(el, xDomain, yDomain, xLabel, yLabel) {
  const x = scale(xDomain[0], xDomain[1], M.left, W - M.right);
  const y = scale(yDomain[0], yDomain[1], H - M.bottom, M.top);
  const g = svg('g', { class: 'axes' });
  for (const t of ticks(xDomain[0], xDomain[1])) {
    g.append(svg('line', { x1: x(t), x2: x(t), y1: M.top, y2: H - M.bottom, class: 'grid' }));
    g.append(text(x(t), H - M.bottom + 16, formatNumber(t), { 'text-anchor': 'middle', class: 'tick' }));
  }
  for (const t of ticks(yDomain[0], yDomain[1])) {
    g.append(svg('line', { x1: M.left, x2: W - M.right, y1: y(t), y2: y(t), class: 'grid' }));
    g.append(text(M.left - 6, y(t) + 4, formatNumber(t), { 'text-anchor': 'end', class: 'tick' }));
  }
  g.append(svg('rect', { x: M.left, y: M.top, width: W - M.left - M.right, height: H - M.top - M.bottom, class: 'plot-border' }));
  g.append(text((M.left + W - M.right) / 2, H - 8, xLabel, { 'text-anchor': 'middle', class: 'axis-label' }));
  g.append(text(14, (M.top + H - M.bottom) / 2, yLabel, { 'text-anchor': 'middle', class: 'axis-label', transform: `rotate(-90 14 ${(M.top + H - M.bottom) / 2})` }));
  el.append(g);
  return { x, y };
}

function legend(el, entries) {
  const g = svg('g', { class: 'legend' });
  entries.forEach((e, i) => {
    const y = H - M.bottom - 12 - (entries.length - 1 - i) * 16;
    g.append(svg('line', { x1: W - M.right - 150, x2: W - M.right - 134, y1: y, y2: y, stroke: e.color, 'stroke-width': 3 }));
    g.append(text(W - M.right - 128, y + 4, e.label, { class: 'legend-text' }));
  });
  el.append(g);
}

const pathOf = (pts, x, y) => pts.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(2)},${y(p[1]).toFixed(2)}`).join('');

/** ROC curves: [{label, auc, points: [{fpr, tpr}]}]. */
export function rocChart(curves) {
  const el = root('roc-curve', 'ROC curve');
  const { x, y } = frame(el, [0, 1], [0, 1], 'False positive rate', 'True positive rate');
  el.append(svg('path', { d: pathOf([[0, 0], [1, 1]], x, y), class: 'diagonal' }));
  curves.forEach((c, i) => {
    el.append(svg('path', { d: pathOf(c.points.map((p) => [p.fpr, p.tpr]), x, y), class: 'roc-line', stroke: PALETTE[i % PALETTE.length], 'data-label': String(c.label) }));
  });
  legend(el, curves.slice(0, 8).map((c, i) => ({ color: PALETTE[i % PALETTE.length], label: `${c.label}  AUC ${formatNumber(c.auc)}` })));
  return el;
}

/** Confusion matrix heat map: matrix[actual][predicted], shaded by share of the actual row. */
export function confusionChart(labels, matrix) {
  const k = labels.length;
  const left = 110;
  const top = 40;
  const cell = Math.max(22, Math.min(72, Math.floor((W - left - 16) / Math.max(1, k))));
  const w = Math.max(W, left + cell * k + 16);
  const h = top + cell * k + 40;
  const el = root('confusion-matrix', 'Confusion matrix (rows: actual, columns: predicted)', w, h);
  el.append(text(left + (cell * k) / 2, 14, 'Predicted', { 'text-anchor': 'middle', class: 'axis-label' }));
  el.append(text(12, top + (cell * k) / 2, 'Actual', { 'text-anchor': 'middle', class: 'axis-label', transform: `rotate(-90 12 ${top + (cell * k) / 2})` }));
  const short = (s) => (String(s).length > 12 ? `${String(s).slice(0, 11)}…` : String(s));
  for (let c = 0; c < k; c++) el.append(text(left + c * cell + cell / 2, top - 8, short(labels[c]), { 'text-anchor': 'middle', class: 'tick' }));
  for (let r = 0; r < k; r++) {
    const total = matrix[r].reduce((a, b) => a + b, 0) || 1;
    el.append(text(left - 8, top + r * cell + cell / 2 + 4, short(labels[r]), { 'text-anchor': 'end', class: 'tick' }));
    for (let c = 0; c < k; c++) {
      const v = matrix[r][c];
      const share = v / total;
      const g = svg('g', { class: 'cm-cell', 'data-actual': String(labels[r]), 'data-predicted': String(labels[c]), 'data-count': v });
      const hue = r === c ? '37, 99, 235' : '220, 38, 38';
      g.append(svg('rect', { x: left + c * cell, y: top + r * cell, width: cell - 2, height: cell - 2, rx: 3, fill: `rgba(${hue}, ${(0.08 + 0.85 * share).toFixed(3)})` }));
      g.append(text(left + c * cell + cell / 2 - 1, top + r * cell + cell / 2 + 4, String(v), { 'text-anchor': 'middle', class: share > 0.55 ? 'cm-count light' : 'cm-count' }));
      el.append(g);
    }
  }
  return el;
}

/** Scatter plot of [{x, y}]; options: diagonal (y = x), zeroLine (y = 0). */
export function scatterChart(name, title, points, { xLabel, yLabel, diagonal = false, zeroLine = false } = {}) {
  const el = root(name, title);
  let xd = extent(points.map((p) => p.x), 0.04);
  let yd = extent(points.map((p) => p.y), 0.04);
  if (diagonal) {
    const both = extent([...xd, ...yd]);
    xd = both;
    yd = both;
  }
  if (zeroLine) yd = [Math.min(yd[0], 0), Math.max(yd[1], 0)];
  const { x, y } = frame(el, xd, yd, xLabel, yLabel);
  if (diagonal) el.append(svg('path', { d: pathOf([[xd[0], xd[0]], [xd[1], xd[1]]], x, y), class: 'diagonal' }));
  if (zeroLine) el.append(svg('path', { d: pathOf([[xd[0], 0], [xd[1], 0]], x, y), class: 'diagonal' }));
  const g = svg('g', { class: 'points' });
  for (const p of points) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) continue;
    g.append(svg('circle', { cx: x(p.x).toFixed(2), cy: y(p.y).toFixed(2), r: 2.6, class: 'point' }));
  }
  el.append(g);
  return el;
}

/** Horizontal bars of [{name, value}], largest first. */
export function barChart(name, title, items, { format = formatNumber } = {}) {
  const rowH = 22;
  const left = 150;
  const w = W;
  const h = 12 + rowH * Math.max(1, items.length) + 8;
  const el = root(name, title, w, h);
  const max = Math.max(...items.map((i) => i.value), 0) || 1;
  const bw = w - left - 70;
  items.forEach((item, i) => {
    const y = 8 + i * rowH;
    const label = item.name.length > 22 ? `${item.name.slice(0, 21)}…` : item.name;
    el.append(text(left - 8, y + 15, label, { 'text-anchor': 'end', class: 'tick' }));
    el.append(svg('rect', { x: left, y: y + 3, width: Math.max(1, (item.value / max) * bw).toFixed(2), height: rowH - 6, rx: 2, class: 'bar', 'data-name': item.name, 'data-value': item.value }));
    el.append(text(left + (item.value / max) * bw + 6, y + 15, format(item.value), { class: 'tick' }));
  });
  return el;
}

/**
 * Deployment history on a time axis: one lane per model, a dot per deployment, and a step line
 * showing which model served from each deployment until the next one (or now).
 */
export function timelineChart(deployments, models) {
  const ids = [...new Set(deployments.map((d) => d.model_id))].sort((a, b) => a - b);
  const lane = 26;
  const left = 150;
  const right = 24;
  const top = 12;
  const h = top + lane * Math.max(1, ids.length) + 34;
  const w = 960;
  const el = root('deployment-timeline', 'Deployment history', w, h);
  if (deployments.length === 0) return el;
  const times = deployments.map((d) => Date.parse(d.created_at));
  const now = Math.max(Date.now(), times[times.length - 1]);
  const t0 = times[0];
  const t1 = now === t0 ? t0 + 1000 : now;
  const x = scale(t0, t1, left, w - right);
  const yOf = (id) => top + ids.indexOf(id) * lane + lane / 2;
  const byId = new Map(models.map((m) => [m.id, m]));
  ids.forEach((id) => {
    const m = byId.get(id);
    el.append(svg('line', { x1: left, x2: w - right, y1: yOf(id), y2: yOf(id), class: 'grid' }));
    el.append(text(left - 8, yOf(id) + 4, `#${id} ${m ? m.algorithm : '(deleted)'}`, { 'text-anchor': 'end', class: 'tick' }));
  });
  const pts = [];
  deployments.forEach((d, i) => {
    const end = i + 1 < deployments.length ? times[i + 1] : now;
    pts.push([times[i], yOf(d.model_id)], [end, yOf(d.model_id)]);
  });
  el.append(svg('path', { d: pts.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(2)},${p[1].toFixed(2)}`).join(''), class: 'timeline-line' }));
  deployments.forEach((d, i) => {
    const c = svg('circle', { cx: x(times[i]).toFixed(2), cy: yOf(d.model_id), r: 5, class: `timeline-dot strategy-${d.strategy}` });
    const t = svg('title');
    t.textContent = `${new Date(times[i]).toLocaleString()} · model #${d.model_id} · ${d.strategy}`;
    c.append(t);
    el.append(c);
  });
  const fmt = (ms) => new Date(ms).toLocaleTimeString();
  el.append(text(left, h - 10, fmt(t0), { class: 'tick' }));
  el.append(text(w - right, h - 10, `${fmt(t1)} (now)`, { 'text-anchor': 'end', class: 'tick' }));
  return el;
}
