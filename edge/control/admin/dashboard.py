"""A one-page dashboard at ``/edgelab/`` on the API port: POPs, functions, metrics and the one log view.

Static HTML + a little JavaScript that polls the admin API (``/edgelab/v1/...``) and the Lambda API
(``/2015-03-31/functions``); no build step, no external assets (the machine may be offline).
"""

from __future__ import annotations

from aiohttp import web

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgelab</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#0f1419;color:#e6e6e6}
 header{padding:12px 20px;background:#1b2430;border-bottom:1px solid #2d3a4a;display:flex;gap:16px;align-items:center}
 header h1{font-size:18px;margin:0} header span{color:#8aa}
 main{padding:16px 20px;display:grid;grid-template-columns:1fr 1fr;gap:16px}
 section{background:#17202a;border:1px solid #2d3a4a;border-radius:6px;padding:12px}
 section.wide{grid-column:1 / span 2}
 h2{font-size:15px;margin:0 0 8px;color:#9cf}
 table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #263241}
 th{color:#8aa;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
 pre{background:#0b0f14;padding:8px;max-height:340px;overflow:auto;font-size:12px;margin:0}
 button,input,select{background:#243244;color:#e6e6e6;border:1px solid #3a4d63;border-radius:4px;padding:4px 8px}
 .ok{color:#7d7}.bad{color:#f77} a{color:#8cf}
</style></head>
<body>
<header><h1>edgelab</h1><span id="summary">loading...</span>
 <button onclick="post('/edgelab/v1/reset')">reset pools &amp; caches</button>
 <input id="inv" value="/*" size="12"><button onclick="invalidate()">invalidate</button></header>
<main>
 <section><h2>POPs</h2><table id="pops"></table></section>
 <section><h2>Functions</h2><table id="functions"></table></section>
 <section class="wide"><h2>POP caches</h2><table id="caches"></table></section>
 <section class="wide"><h2>Invocations (per POP, region, function, version)</h2><table id="metrics"></table></section>
 <section class="wide"><h2>Logs</h2>
  <select id="logfn"></select> request id <input id="logrid" size="40">
  <button onclick="loadLogs()">show</button><pre id="logs"></pre></section>
</main>
<script>
const $ = id => document.getElementById(id);
const esc = s => String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
async function get(p){ const r = await fetch(p); return r.json(); }
async function post(p, body){ const r = await fetch(p,{method:'POST',headers:{'content-type':'application/json'},
  body:JSON.stringify(body||{})}); refresh(); return r.json(); }
function invalidate(){ post('/edgelab/v1/invalidations', {paths:[$('inv').value]}); }
function row(cells, head){ return '<tr>' + cells.map(c => head ? `<th>${esc(c)}</th>` :
  (typeof c === 'number' ? `<td class="num">${c}</td>` : `<td>${c}</td>`)).join('') + '</tr>'; }
function fmt(x){ return typeof x === 'number' ? Math.round(x*100)/100 : (x ?? ''); }
function metricRows(scope, byRegion){
  const out = [];
  for (const [region, fns] of Object.entries(byRegion || {}))
    for (const [fn, versions] of Object.entries(fns))
      for (const [ver, s] of Object.entries(versions))
        out.push(row([esc(scope), esc(region), esc(fn), esc(ver), s.invocations||0, s.errors||0, s.throttles||0,
          s.cold_starts||0, fmt(s.duration_ms && s.duration_ms.p50), fmt(s.duration_ms && s.duration_ms.p99),
          fmt(s.init_duration_ms && s.init_duration_ms.p50)]));
  return out;
}
async function refresh(){
  try {
    const [st, fns, met] = await Promise.all([get('/edgelab/v1/status'), get('/2015-03-31/functions'),
                                              get('/edgelab/v1/metrics')]);
    $('pops').innerHTML = row(['POP','region','URL','health'], true) + st.pops.map(p => row([esc(p.name),
      esc(p.region), `<a href="${esc(p.url)}">${esc(p.url)}</a>`,
      p.health && !p.health.error ? '<span class="ok">up</span>' : '<span class="bad">down</span>'])).join('');
    const fl = fns.Functions || [];
    $('functions').innerHTML = row(['name','runtime','memory','timeout','handler'], true) +
      fl.map(f => row([esc(f.FunctionName), esc(f.Runtime), f.MemorySize, f.Timeout, esc(f.Handler)])).join('');
    const sel = $('logfn'), cur = sel.value;
    sel.innerHTML = fl.map(f => `<option>${esc(f.FunctionName)}</option>`).join(''); if (cur) sel.value = cur;
    let rows = metricRows('API', met.control);
    for (const [pop, m] of Object.entries(met.pops || {})) rows = rows.concat(metricRows('POP ' + pop, m.functions));
    $('metrics').innerHTML = row(['where','region','function','version','invocations','errors','throttles',
      'cold starts','p50 ms','p99 ms','init p50 ms'], true) + rows.join('');
    $('caches').innerHTML = row(['POP','requests','hits','misses','entries','bytes'], true) +
      Object.entries(met.pops || {}).map(([pop, m]) => row([esc(pop), m.requests ?? '', m.hits ?? '',
        m.misses ?? '', (m.cache||{}).entries ?? '', (m.cache||{}).bytes ?? ''])).join('');
    $('summary').textContent = `${st.pops.length} POPs, ${fl.length} functions`;
  } catch (e) { $('summary').textContent = 'API unreachable: ' + e; }
}
async function loadLogs(){
  const q = new URLSearchParams({function: $('logfn').value, tail: 200});
  if ($('logrid').value) q.set('request_id', $('logrid').value);
  const r = await get('/edgelab/v1/logs?' + q);
  $('logs').textContent = (r.events || []).map(e => `${e.group||''} ${e.message}`).join('\\n') || '(no events)';
}
refresh(); setInterval(refresh, 3000);
</script></body></html>
"""


async def dashboard(request: web.Request) -> web.Response:
    return web.Response(text=_PAGE, content_type="text/html")


def add_dashboard_routes(app: web.Application) -> None:
    app.router.add_get("/edgelab", dashboard)
    app.router.add_get("/edgelab/", dashboard)
