// edgelab's dashboard: polls the admin API (/edgelab/v1/...) and the Lambda API, draws with uPlot (vendored, no
// network). Every chart's uPlot instance is in window.edgelabCharts by its data-chart name: `.data` is exactly
// what is drawn (the browser test reads it), `.series[i].label` names its lines.
'use strict';
const $ = id => document.getElementById(id);
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;',
  "'": '&#39;'}[c]));
const COLORS = ['#4e9af1', '#f1a14e', '#6cd67a', '#e0607e', '#b48ef0', '#e8d35a', '#5fd0d0', '#d0d0d0'];
const charts = window.edgelabCharts = {};
const chartKeys = {};
let seriesInterval = 1000;

async function get(p) { const r = await fetch(p); if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`); return r.json(); }
async function post(p, body) {
  const r = await fetch(p, {method: 'POST', headers: {'content-type': 'application/json'},
    body: JSON.stringify(body || {})});
  refresh(); return r.json();
}

// A table from column specs ({h, num}) and rows of cells (a cell: text, a number, or {html} already escaped);
// numeric columns are right-aligned in the header and the body alike.
function table(el, cols, rows, attrs) {
  const head = '<tr>' + cols.map(c => `<th${c.num ? ' class="num"' : ''}>${esc(c.h)}</th>`).join('') + '</tr>';
  const body = rows.map((r, i) => `<tr${attrs ? attrs(i) : ''}>` + r.map((v, j) => {
    const cls = cols[j].num ? ' class="num"' : '';
    if (v && typeof v === 'object') return `<td${cls}>${v.html}</td>`;
    return `<td${cls}>${esc(v)}</td>`;
  }).join('') + '</tr>').join('');
  el.innerHTML = head + body;
}
const fmt = x => typeof x === 'number' ? Math.round(x * 100) / 100 : (x ?? '');
const pct = r => r == null ? '-' : `${(100 * r).toFixed(1)} %`;

// Create the chart, or feed it new data; recreated when its series change (a POP or function appears).
function draw(name, el, opts, labels, data) {
  const key = JSON.stringify(labels);
  let u = charts[name];
  if (u && chartKeys[name] !== key) { u.destroy(); u = null; delete charts[name]; }
  if (!u) {
    el.textContent = '';
    const width = Math.max(300, el.clientWidth - 10);
    const series = [opts.x || {}].concat(labels.map((l, i) => Object.assign(
      {label: l, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false, points: {size: 5}},
      opts.each ? opts.each(i, l) : {})));
    u = new uPlot({title: opts.title, width, height: opts.height || 220, series, axes: opts.axes, scales: opts.scales,
      legend: {live: true}}, data, el);
    charts[name] = u; chartKeys[name] = key;
  } else {
    u.setData(data);
  }
  el.dataset.points = String(data[0].length);
  return u;
}

// y from 0 (to 100 for a percentage; else to the largest value, at least 1, so an all-zero line sits at the bottom)
const fromZero = (max) => ({range: (u, mn, mx) => [0, max ?? Math.max(1, mx ?? 1)]});

function timeChart(name, title, unit, labels, t, columns) {
  const el = document.querySelector(`[data-chart="${name}"]`);
  return draw(name, el, {title, axes: [{stroke: '#9ab', grid: {stroke: '#263241'}},
    {stroke: '#9ab', grid: {stroke: '#263241'}, label: unit, size: 60}],
    scales: {x: {time: true}, y: fromZero(unit === '%' ? 100 : null)}}, labels, [t].concat(columns));
}

function bucketLabel(bounds, i) {
  if (i >= bounds.length) return `>${bounds[bounds.length - 1]}`;
  return `≤${bounds[i]}`;
}

function latencyCharts(s) {
  const box = $('latency');
  const names = Object.keys(s.functions);
  for (const el of [...box.children]) {
    if (!names.includes(el.dataset.function)) { charts[el.dataset.chart]?.destroy(); delete charts[el.dataset.chart]; el.remove(); }
  }
  if (!names.length) { box.innerHTML = '<div class="chart"><div class="empty">no invocations in the window</div></div>'; return; }
  box.querySelector('.empty')?.parentElement.remove();
  const bounds = s.bounds_ms;
  for (const fn of names) {
    const name = `latency:${fn}`;
    let el = box.querySelector(`[data-chart="${CSS.escape(name)}"]`);
    if (!el) {
      el = document.createElement('div');
      el.className = 'chart'; el.dataset.chart = name; el.dataset.function = fn;
      box.appendChild(el);
    }
    const lat = s.functions[fn].latency;
    const n = Math.max(lat.warm.length, lat.cold.length, bounds.length + 1);
    // only the buckets from the first to the last non-empty one (with one on each side) are drawn
    let lo = n, hi = -1;
    for (let i = 0; i < n; i++) if ((lat.warm[i] || 0) + (lat.cold[i] || 0) > 0) { lo = Math.min(lo, i); hi = i; }
    if (hi < 0) { lo = 0; hi = 0; }
    lo = Math.max(0, lo - 1); hi = Math.min(n - 1, hi + 1);
    const xs = [], warm = [], cold = [];
    for (let i = lo; i <= hi; i++) { xs.push(i); warm.push(lat.warm[i] || 0); cold.push(lat.cold[i] || 0); }
    const total = (a) => a.reduce((x, y) => x + y, 0);
    el.dataset.warm = String(total(lat.warm)); el.dataset.cold = String(total(lat.cold));
    const bars = (align) => uPlot.paths.bars({size: [0.4, 40], align});
    draw(name, el, {
      title: `${fn}: warm ${total(lat.warm)}, cold ${total(lat.cold)} (ms)`, height: 200,
      x: {label: 'ms'},
      each: (i) => ({paths: bars(i === 0 ? -1 : 1), fill: COLORS[i === 0 ? 0 : 3] + 'cc', points: {show: false}}),
      scales: {x: {time: false, range: [lo - 0.6, hi + 0.6]}, y: fromZero(null)},
      axes: [{stroke: '#9ab', grid: {show: false}, splits: () => xs, values: (u, splits) => splits.map(i => bucketLabel(bounds, i))},
        {stroke: '#9ab', grid: {stroke: '#263241'}, label: 'invocations', size: 50}],
    }, ['warm', 'cold'], [xs, warm, cold]);
  }
}

async function refreshSeries() {
  let s;
  try { s = await get('/edgelab/v1/series'); } catch (e) { $('window').textContent = 'series unavailable: ' + e; return; }
  seriesInterval = Math.max(250, 1000 * (s.interval_s || 1));
  const t = s.t, pops = Object.keys(s.pops), fns = Object.keys(s.functions);
  $('window').textContent = `window: last ${t.length} of ${s.capacity} samples, every ${s.interval_s} s`;
  timeChart('request-rate', 'Requests per second', 'req/s', pops, t, pops.map(p => s.pops[p].rate));
  timeChart('hit-ratio', 'Cache hit ratio (Hit + RefreshHit) / (Hit + RefreshHit + Miss)', '%', pops, t,
    pops.map(p => s.pops[p].hit_ratio.map(r => r == null ? null : Math.round(r * 1000) / 10)));
  timeChart('invocations', 'Invocations and cold starts per sample', 'count',
    fns.map(f => `${f} invocations`).concat(fns.map(f => `${f} cold starts`)), t,
    fns.map(f => s.functions[f].invocations).concat(fns.map(f => s.functions[f].cold_starts)));
  timeChart('errors-throttles', 'Errors and throttles per sample', 'count',
    pops.map(p => `${p} errors`).concat(fns.map(f => `${f} errors`), fns.map(f => `${f} throttles`)), t,
    pops.map(p => s.pops[p].errors).concat(fns.map(f => s.functions[f].errors), fns.map(f => s.functions[f].throttles)));
  const last = (a) => { for (let i = a.length - 1; i >= 0; i--) if (a[i] != null) return a[i]; return null; };
  table($('traffic'), [{h: 'POP'}, {h: 'req/s now', num: true}, {h: 'requests', num: true}, {h: 'hits', num: true},
    {h: 'misses', num: true}, {h: 'hit ratio', num: true}, {h: 'errors', num: true}],
    pops.map(p => { const tot = s.pops[p].totals; const now = last(s.pops[p].rate); return [p, now == null ? '-' : fmt(now), tot.requests, tot.hits,
      tot.misses, pct(tot.hit_ratio), tot.errors]; }),
    i => { const tot = s.pops[pops[i]].totals; return ` data-pop="${esc(pops[i])}" data-hit-ratio="${tot.hit_ratio ?? ''}"`; });
  table($('fn-window'), [{h: 'function'}, {h: 'invocations', num: true}, {h: 'cold starts', num: true},
    {h: 'errors', num: true}, {h: 'throttles', num: true}],
    fns.map(f => { const tot = s.functions[f].totals; return [f, tot.invocations, tot.cold_starts, tot.errors, tot.throttles]; }),
    i => ` data-function="${esc(fns[i])}"`);
  latencyCharts(s);
}

function metricRows(scope, byRegion) {
  const out = [];
  for (const [region, fns] of Object.entries(byRegion || {}))
    for (const [fn, versions] of Object.entries(fns))
      for (const [ver, m] of Object.entries(versions))
        out.push([scope, region, fn, ver, m.invocations || 0, m.errors || 0, m.throttles || 0, m.cold_starts || 0,
          fmt(m.duration_ms?.p50), fmt(m.duration_ms?.p99), fmt(m.init_duration_ms?.p50)]);
  return out;
}

async function refresh() {
  try {
    const [st, fns, met] = await Promise.all([get('/edgelab/v1/status'), get('/2015-03-31/functions'),
      get('/edgelab/v1/metrics')]);
    table($('pops'), [{h: 'POP'}, {h: 'region'}, {h: 'URL'}, {h: 'health'}], st.pops.map(p => [p.name, p.region,
      {html: `<a href="${esc(p.url)}">${esc(p.url)}</a>`},
      {html: p.health && !p.health.error ? '<span class="ok">up</span>' : '<span class="bad">down</span>'}]));
    const fl = fns.Functions || [];
    table($('functions'), [{h: 'name'}, {h: 'runtime'}, {h: 'memory', num: true}, {h: 'timeout', num: true},
      {h: 'handler'}], fl.map(f => [f.FunctionName, f.Runtime, f.MemorySize, f.Timeout, f.Handler]));
    const sel = $('logfn'), cur = sel.value;
    sel.innerHTML = fl.map(f => `<option>${esc(f.FunctionName)}</option>`).join(''); if (cur) sel.value = cur;
    let rows = metricRows('API', met.control);
    for (const [pop, m] of Object.entries(met.pops || {})) rows = rows.concat(metricRows('POP ' + pop, m.functions));
    table($('metrics'), [{h: 'where'}, {h: 'region'}, {h: 'function'}, {h: 'version'}, {h: 'invocations', num: true},
      {h: 'errors', num: true}, {h: 'throttles', num: true}, {h: 'cold starts', num: true}, {h: 'p50 ms', num: true},
      {h: 'p99 ms', num: true}, {h: 'init p50 ms', num: true}], rows);
    table($('caches'), [{h: 'POP'}, {h: 'requests', num: true}, {h: 'hits', num: true}, {h: 'misses', num: true},
      {h: 'entries', num: true}, {h: 'bytes', num: true}],
      Object.entries(met.pops || {}).map(([pop, m]) => m.error ? [pop, {html: `<span class="bad">${esc(m.error)}</span>`},
        '', '', '', ''] : [pop, m.requests ?? '', m.hits ?? '', m.misses ?? '', m.cache?.entries ?? '', m.cache?.bytes ?? '']));
    $('summary').textContent = `${st.pops.length} POPs, ${fl.length} functions`;
  } catch (e) { $('summary').textContent = 'API unreachable: ' + e; }
}

async function loadLogs() {
  const q = new URLSearchParams({function: $('logfn').value, tail: 200});
  if ($('logrid').value) q.set('request_id', $('logrid').value);
  try {
    const r = await get('/edgelab/v1/logs?' + q);
    $('logs').textContent = (r.events || []).map(e => `${e.group || ''} ${e.message}`).join('\n') || '(no events)';
  } catch (e) { $('logs').textContent = String(e); }
}

$('reset').addEventListener('click', () => post('/edgelab/v1/reset'));
$('invalidate').addEventListener('click', () => post('/edgelab/v1/invalidations', {paths: [$('inv').value]}));
$('showlogs').addEventListener('click', loadLogs);
window.addEventListener('resize', () => {
  for (const [name, u] of Object.entries(charts)) {
    const el = document.querySelector(`[data-chart="${CSS.escape(name)}"]`);
    if (el) u.setSize({width: Math.max(300, el.clientWidth - 10), height: u.height});
  }
});

async function seriesLoop() { await refreshSeries(); setTimeout(seriesLoop, seriesInterval); }
refresh(); setInterval(refresh, 3000);
seriesLoop();
