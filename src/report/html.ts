// The report as one self-contained HTML file: the tables are HTML (readable without script),
// the charts are drawn by ECharts, inlined from node_modules with its licence header, from the
// report's data embedded as JSON; src/report/client.js draws them. Nothing is fetched.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AccessRow, DeviceReport, ReportData } from './model.ts';
import { WAIT_BUCKETS } from './model.ts';

const require = createRequire(import.meta.url);

function echartsSource(): { version: string; code: string } {
  const pkgPath = require.resolve('echarts/package.json');
  const version = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string }).version;
  return { version, code: readFileSync(require.resolve('echarts/dist/echarts.min.js'), 'utf8') };
}

const esc = (s: string | number): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A script's text may not close its element. */
const scriptSafe = (s: string): string => s.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');

export function ms(ns: number): string {
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(2)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(1)} µs`;
  return `${Math.round(ns)} ns`;
}

function accessTable(rows: readonly AccessRow[], cls: string): string {
  const head = '<tr><th>t</th><th>guest</th><th>register</th><th>dir</th><th>size×count</th><th>value</th><th>took</th><th>waited</th><th>chart after</th></tr>';
  const body = rows
    .map(([t, g, reg, dir, size, count, value, ns, stall, after]) =>
      `<tr><td>${esc(ms(t))}</td><td>${esc(g)}</td><td>${esc(reg)}</td><td>${dir}</td><td>${size}×${count}</td><td>${esc(value)}</td><td>${esc(ms(ns))}</td><td>${stall ? esc(ms(stall)) : ''}</td><td>${esc(after)}</td></tr>`,
    )
    .join('');
  return `<table class="${cls}">${head}${body}</table>`;
}

function deviceSection(d: DeviceReport, guests: readonly string[]): string {
  const shares = d.shares
    .map(
      (s) =>
        `<tr data-guest="${esc(s.guest)}"><td>${esc(s.guest)}</td><td>${(s.share * 100).toFixed(1)} %</td><td>${esc(ms(s.ownedNs))}</td><td>${s.accesses}</td><td>${s.stalled}</td><td>${esc(ms(s.waitNs))}</td><td>${esc(ms(s.maxWaitNs))}</td></tr>`,
    )
    .join('');
  const hist = d.waitHistogram.map((counts, g) => `<tr><td>${esc(guests[g])}</td>${counts.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('');
  return `
<section class="device" data-device="${esc(d.id)}" id="device-${esc(d.id)}">
  <h2>${esc(d.id)} <small>${esc(d.kind)}${d.machine ? `, chart ${esc(d.machine)}` : ', no MUX'}</small></h2>
  <p class="counts">
    <span class="switches" data-switches="${d.switches}">${d.switches} switches</span>,
    <span data-unsafe-switches="${d.unsafeSwitches}">${d.unsafeSwitches} unsafe switches</span>,
    <span data-resets="${d.resets}">${d.resets} resets</span>, <span data-faults="${d.faults}">${d.faults} faults</span>,
    <span data-irqs="${d.irqs}">${d.irqs} IRQs</span>, <span data-accesses="${d.accesses}">${d.accesses} accesses</span>
  </p>
  <h3>Ownership timeline</h3>
  <p class="hint">Who owned the device when (a bar per ownership), the chart's unsafe spans, the guests' waits (thin),
  switches, resets and IRQs. Drag or scroll to zoom; click an ownership bar to list its accesses.</p>
  <div class="chart timeline" data-chart="timeline" data-device="${esc(d.id)}"></div>
  <div class="span-accesses" data-device="${esc(d.id)}"><p class="hint">Click an ownership bar.</p></div>
  <div class="two">
    <div>
      <h3>Service shares</h3>
      <div class="chart small" data-chart="shares" data-device="${esc(d.id)}"></div>
      <table class="shares"><tr><th>guest</th><th>share</th><th>owned</th><th>accesses</th><th>stalled</th><th>waited</th><th>longest wait</th></tr>${shares}</table>
    </div>
    <div>
      <h3>Wait times</h3>
      <div class="chart small" data-chart="waits" data-device="${esc(d.id)}"></div>
      <table class="waits"><tr><th>guest</th>${WAIT_BUCKETS.map((b) => `<th>${esc(b)}</th>`).join('')}</tr>${hist}</table>
    </div>
  </div>
  <h3>Slowest accesses</h3>
  ${accessTable(d.slowest, 'slowest')}
</section>`;
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.4em; margin: 0 0 .2em; } h2 { margin-top: 1.5em; border-bottom: 1px solid #ccc; } h2 small { color: #666; font-weight: normal; }
.hint { color: #666; font-size: .9em; margin: .2em 0; }
.chart.timeline { width: 100%; height: 340px; } .chart.small { width: 100%; height: 220px; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 2em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; } td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f3f3f3; } td:nth-child(2), td:nth-child(3) { text-align: left; }
.span-accesses { max-height: 320px; overflow: auto; }
`;

/** The whole report page. */
export function reportHtml(data: ReportData, clientJs: string): string {
  const echarts = echartsSource();
  const title = `muxvisor report: ${data.source}`;
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>${STYLE}</style>
<script>/* Apache ECharts ${esc(echarts.version)} (Apache-2.0), inlined from node_modules/echarts/dist/echarts.min.js */
${scriptSafe(echarts.code)}</script>
</head><body>
<header>
  <h1>${esc(title)}</h1>
  <p>${esc(data.tool)}, started ${esc(data.started)}, ${esc(ms(data.durationNs))} recorded: ${data.accesses} accesses, ${data.events} MUX events;
  guests <span class="guests">${data.guests.map((g) => `<b data-guest="${esc(g)}">${esc(g)}</b>`).join(', ')}</span>.</p>
</header>
<main>${data.devices.map((d) => deviceSection(d, data.guests)).join('\n')}</main>
<script type="application/json" id="report-data">${json}</script>
<script>${scriptSafe(clientJs)}</script>
</body></html>
`;
}
