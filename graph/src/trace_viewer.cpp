// A self-contained HTML view of a run's trace (written beside the trace-event JSON): for
// machines that cannot reach Perfetto's web UI, and for screenshots (headless Chromium
// renders it). It draws what Perfetto would: one row per runtime thread with the slices
// nested by depth, the counter tracks as step charts, a time axis; wheel zooms, dragging
// pans, a double click shows the whole run, hovering names a slice. Below, every slice
// name's count and summed duration.
#include "trace_viewer.hpp"

namespace flowrun::profiling {
namespace {

constexpr const char* kHead = R"HTML(<!doctype html>
<html><head><meta charset="utf-8"><title>)HTML";

constexpr const char* kStyle = R"HTML(</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; margin: 0 0 4px; }
#info { color: #555; margin: 0 0 10px; }
canvas { border: 1px solid #ccc; display: block; cursor: grab; }
#tip { position: fixed; pointer-events: none; background: #fffbe6; border: 1px solid #bbb;
       padding: 3px 6px; font-size: 12px; display: none; white-space: pre; }
table { border-collapse: collapse; margin-top: 12px; }
td, th { padding: 2px 10px; border-bottom: 1px solid #eee; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; }
</style></head><body>
<h1 id="title"></h1><p id="info"></p>
<canvas id="view"></canvas><div id="tip"></div>
<table id="totals"><thead><tr><th>slice</th><th>count</th><th>total ms</th><th>share of the run</th>
<th>median us</th></tr></thead><tbody></tbody></table>
<script id="trace" type="application/json">)HTML";

constexpr const char* kScript = R"HTML(</script>
<script>
"use strict";
const events = JSON.parse(document.getElementById("trace").textContent).traceEvents;
const threads = new Map(), counters = new Map();
let t0 = Infinity, t1 = -Infinity, processName = "";
for (const e of events) {
  if (e.ph === "M" && e.name === "process_name") processName = e.args.name;
  if (e.ph === "M" && e.name === "thread_name") threads.set(e.tid, {name: e.args.name, slices: [], depth: 1});
}
for (const e of events) {
  if (e.ph === "X") {
    if (!threads.has(e.tid)) threads.set(e.tid, {name: "thread " + e.tid, slices: [], depth: 1});
    threads.get(e.tid).slices.push(e);
    t0 = Math.min(t0, e.ts); t1 = Math.max(t1, e.ts + e.dur);
  } else if (e.ph === "C") {
    if (!counters.has(e.name)) counters.set(e.name, []);
    counters.get(e.name).push([e.ts, e.args.value]);
    t0 = Math.min(t0, e.ts); t1 = Math.max(t1, e.ts);
  }
}
if (!isFinite(t0)) { t0 = 0; t1 = 1; }
// Nesting depth on each thread: slices sorted by start either follow or contain each other.
for (const th of threads.values()) {
  th.slices.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const open = [];
  for (const s of th.slices) {
    while (open.length && open[open.length - 1] <= s.ts) open.pop();
    s.depth = open.length; open.push(s.ts + s.dur);
    th.depth = Math.max(th.depth, open.length);
  }
}
for (const c of counters.values()) c.sort((a, b) => a[0] - b[0]);
// Totals per slice name, longest first; the longest get the most distinct colours.
const totals = new Map();
for (const th of threads.values())
  for (const s of th.slices) {
    if (!totals.has(s.name)) totals.set(s.name, []);
    totals.get(s.name).push(s.dur);
  }
const sum = list => list.reduce((x, y) => x + y, 0);
const ranked = [...totals].sort((a, b) => sum(b[1]) - sum(a[1]));
const palette = ["#e8a33d", "#4e9ad6", "#66bb6a", "#d9534f", "#9c6ade", "#8d6e63", "#ec6fb0", "#7f8c8d",
                 "#c0ca33", "#26c6da"];
const colours = new Map();
ranked.forEach(([name], i) => colours.set(name, palette[i % palette.length]));
for (const name of counters.keys()) colours.set(name, palette[colours.size % palette.length]);
const color = name => colours.get(name) || "#999";

const canvas = document.getElementById("view"), ctx = canvas.getContext("2d");
const LEFT = 150, ROW = 18, COUNTER = 46, AXIS = 22;
const rows = [];  // {kind, label, y, h, data}
let y = AXIS;
for (const th of [...threads.values()]) { rows.push({kind: "thread", label: th.name, y, h: th.depth * ROW, data: th}); y += th.depth * ROW + 6; }
for (const [name, samples] of counters) { rows.push({kind: "counter", label: name, y, h: COUNTER, data: samples}); y += COUNTER + 4; }
let view = [t0, t1];

function resize() {
  const width = Math.max(600, document.body.clientWidth - 4);
  canvas.width = width * devicePixelRatio; canvas.height = (y + 4) * devicePixelRatio;
  canvas.style.width = width + "px"; canvas.style.height = (y + 4) + "px";
  draw();
}
const xOf = t => LEFT + (t - view[0]) / (view[1] - view[0]) * (canvas.width / devicePixelRatio - LEFT);
const tOf = x => view[0] + (x - LEFT) / (canvas.width / devicePixelRatio - LEFT) * (view[1] - view[0]);

function niceStep(span) {
  const raw = span / 8, p = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 5, 10].map(m => m * p).find(s => s >= raw);
}

function draw() {
  const W = canvas.width / devicePixelRatio;
  ctx.setTransform(devicePixelRatio, 0, 0, devicePixelRatio, 0, 0);
  ctx.clearRect(0, 0, W, y + 4);
  ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "middle";
  const step = niceStep(view[1] - view[0]);
  ctx.fillStyle = "#555"; ctx.strokeStyle = "#e4e4e4";
  for (let t = t0 + Math.ceil((view[0] - t0) / step) * step; t <= view[1]; t += step) {
    const x = xOf(t);
    ctx.beginPath(); ctx.moveTo(x, AXIS - 4); ctx.lineTo(x, y); ctx.stroke();
    const label = step >= 1e6 ? ((t - t0) / 1e6).toFixed(0) + " s" : ((t - t0) / 1000).toFixed(step < 1000 ? 2 : 0) + " ms";
    ctx.fillText(label, x + 2, AXIS / 2);
  }
  for (const r of rows) {
    ctx.fillStyle = "#333"; ctx.fillText(r.label, 4, r.y + Math.min(r.h, ROW) / 2, LEFT - 8);
    ctx.save(); ctx.beginPath(); ctx.rect(LEFT, r.y, W - LEFT, r.h); ctx.clip();
    if (r.kind === "thread") drawSlices(r); else drawCounter(r);
    ctx.restore();
  }
}

function drawSlices(r) {
  // Slices narrower than a pixel share a column: the column shows the longest of them
  // (else a run of short loader slices would hide the steps between them).
  const narrow = new Map();
  for (const s of r.data.slices) {
    if (s.ts + s.dur < view[0] || s.ts > view[1]) continue;
    const x0 = xOf(s.ts), x1 = xOf(s.ts + s.dur);
    if (x1 - x0 < 1.5) {
      const key = s.depth * 100000 + Math.floor(x0), held = narrow.get(key);
      if (!held || held.dur < s.dur) narrow.set(key, s);
      continue;
    }
    drawSlice(r, s, x0, x1 - x0);
  }
  for (const s of narrow.values()) drawSlice(r, s, Math.floor(xOf(s.ts)), 1);
}

function drawSlice(r, s, x0, w) {
  const top = r.y + s.depth * ROW;
  ctx.fillStyle = color(s.name); ctx.fillRect(x0, top + 1, w, ROW - 2);
  if (w > 40) {
    ctx.fillStyle = "#111"; ctx.save(); ctx.beginPath(); ctx.rect(x0, top, w, ROW); ctx.clip();
    ctx.fillText(s.name, Math.max(x0, LEFT) + 3, top + ROW / 2); ctx.restore();
  }
}

function drawCounter(r) {
  const samples = r.data;
  let max = 1;
  for (const [, v] of samples) max = Math.max(max, v);
  ctx.fillStyle = color(r.label); ctx.beginPath();
  const base = r.y + r.h, scale = (r.h - 4) / max;
  ctx.moveTo(LEFT, base);
  let prev = 0;
  for (const [t, v] of samples) {
    const x = Math.min(Math.max(xOf(t), LEFT), 1e6);
    ctx.lineTo(x, base - prev * scale); ctx.lineTo(x, base - v * scale); prev = v;
  }
  ctx.lineTo(canvas.width / devicePixelRatio, base - prev * scale);
  ctx.lineTo(canvas.width / devicePixelRatio, base); ctx.closePath(); ctx.fill();
  ctx.fillStyle = "#555"; ctx.fillText("max " + max, LEFT + 4, r.y + 8);
}

function sliceAt(mx, my) {
  const t = tOf(mx);
  for (const r of rows) {
    if (r.kind !== "thread" || my < r.y || my >= r.y + r.h) continue;
    const depth = Math.floor((my - r.y) / ROW), tolerance = (view[1] - view[0]) / canvas.width;
    let best = null;
    for (const s of r.data.slices)
      if (s.depth === depth && s.ts - tolerance <= t && t <= s.ts + s.dur + tolerance) best = s;
    return best && {s: best, thread: r.label};
  }
  return null;
}

const tip = document.getElementById("tip");
let drag = null;
canvas.addEventListener("wheel", e => {
  e.preventDefault();
  const t = tOf(e.offsetX), f = e.deltaY > 0 ? 1.25 : 0.8;
  view = [t - (t - view[0]) * f, t + (view[1] - t) * f];
  draw();
}, {passive: false});
canvas.addEventListener("mousedown", e => { drag = {x: e.offsetX, view: view.slice()}; canvas.style.cursor = "grabbing"; });
window.addEventListener("mouseup", () => { drag = null; canvas.style.cursor = "grab"; });
canvas.addEventListener("dblclick", () => { view = [t0, t1]; draw(); });
canvas.addEventListener("mousemove", e => {
  if (drag) {
    const dt = (e.offsetX - drag.x) / (canvas.width / devicePixelRatio - LEFT) * (drag.view[1] - drag.view[0]);
    view = [drag.view[0] - dt, drag.view[1] - dt]; draw(); return;
  }
  const hit = sliceAt(e.offsetX, e.offsetY);
  if (!hit) { tip.style.display = "none"; return; }
  const s = hit.s;
  tip.textContent = `${s.name}\n${hit.thread}\nstart ${((s.ts - t0) / 1000).toFixed(3)} ms, ` +
                    `${s.dur.toFixed(1)} us` + (s.args && s.args.items ? `, ${s.args.items} items` : "");
  tip.style.left = (e.clientX + 12) + "px"; tip.style.top = (e.clientY + 12) + "px"; tip.style.display = "block";
});

const tbody = document.querySelector("#totals tbody");
for (const [name, durs] of ranked) {
  const total = sum(durs);
  durs.sort((a, b) => a - b);
  const row = document.createElement("tr");
  const cell = text => { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; };
  const first = cell(name);
  const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = color(name);
  first.prepend(sw);
  cell(durs.length); cell((total / 1000).toFixed(2));
  cell((100 * total / (t1 - t0)).toFixed(1) + "%"); cell(durs[Math.floor(durs.length / 2)].toFixed(1));
  tbody.appendChild(row);
}
document.getElementById("title").textContent = processName || document.title;
const runtimeThreads = [...threads.values()].filter(th => th.name.startsWith("runtime")).length;
const span = t1 - t0 >= 1e6 ? `${((t1 - t0) / 1e6).toFixed(1)} s` : `${((t1 - t0) / 1000).toFixed(1)} ms`;
document.getElementById("info").textContent =
  `${span} on ${runtimeThreads} runtime thread(s)` +
  (threads.size > runtimeThreads ? ` and ${threads.size - runtimeThreads} stage thread(s)` : "") + "; " +
  `${events.filter(e => e.ph === "X").length} slices. Wheel: zoom; drag: pan; double click: the whole run. ` +
  `Shares are of the run's span per thread summed, so they add up to the thread count.`;
window.addEventListener("resize", resize);
resize();
</script></body></html>
)HTML";

std::string escaped_html(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

}  // namespace

std::string trace_viewer_page(const std::string& title, const std::string& trace_json) {
  // Inside <script>, "</" could end the element: "<\/" is the same JSON string.
  std::string embedded;
  embedded.reserve(trace_json.size());
  for (std::size_t i = 0; i < trace_json.size(); ++i) {
    embedded += trace_json[i];
    if (trace_json[i] == '<' && i + 1 < trace_json.size() && trace_json[i + 1] == '/') embedded += '\\';
  }
  return std::string(kHead) + escaped_html(title) + kStyle + embedded + kScript;
}

std::string trace_viewer_path(const std::string& trace_path) {
  const std::string json = ".json";
  if (trace_path.size() > json.size() && trace_path.compare(trace_path.size() - json.size(), json.size(), json) == 0)
    return trace_path.substr(0, trace_path.size() - json.size()) + ".html";
  return trace_path + ".html";
}

}  // namespace flowrun::profiling
