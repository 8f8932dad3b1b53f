// `muxvisor report`: the access log of a real 3-guest disk demo becomes one self-contained HTML
// page; headless Chromium (Debian's package) opens it: the DOM holds the device, the guests and
// the log's switch count, every chart was drawn (ECharts' canvas), `#span=disk0:0` lists the
// first span's accesses as a click would, and a screenshot has the guests' colours in it (not a
// blank page).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDiskDemo } from '../src/demo/disk-demo.ts';
import { readAll } from '../src/log/read.ts';
import type { EventRecord } from '../src/log/record.ts';
import { missing, titled } from './helpers/requires.ts';
import { useCliProcesses } from './helpers/cli-process.ts';

const { cli } = useCliProcesses('mvreport-cli-');
const why = missing('chromium');

/** Chromium, headless, on a file: its own profile folder, so runs do not share one. */
function chromium(dir: string, args: string[]): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync('chromium', ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${join(dir, 'profile')}`, '--window-size=1280,1600', '--virtual-time-budget=5000', ...args], {
    encoding: 'utf8',
    timeout: 90_000,
    maxBuffer: 64 << 20,
  });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

describe.skipIf(why !== null)(titled('muxvisor report', why), () => {
  let dir = '';
  let html = '';
  let page = '';
  let switches = 0;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mvreport-'));
    const log = join(dir, 'demo.jsonl');
    const r = await runDiskDemo({ guests: 3, seconds: 0.6, policy: 'round-robin', backend: 'model', mode: 'mixed', accessLog: log });
    expect(r.summary.devices[0].perGuest.every((g) => g.verified)).toBe(true);
    switches = (await readAll(log)).filter((x): x is EventRecord => x.type === 'event' && x.kind === 'switch').length;
    expect(switches).toBeGreaterThan(2);
    page = join(dir, 'report.html');
    const w = await cli('report', log, '-o', page);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stdout).toMatch(/^wrote .*report\.html: 1 device\(s\), 3 guest\(s\)/);
    html = readFileSync(page, 'utf8');
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is one self-contained file: every script inline, nothing to fetch', () => {
    expect(html).toMatch(/Apache ECharts 6\.1\.0/);
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/url\(\s*['"]?https?:/i);
  });

  it('Chromium\'s DOM: the device, the guests, the switch count, drawn charts, a span\'s accesses', () => {
    const r = chromium(dir, ['--dump-dom', `file://${page}#span=disk0:0`]);
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const dom = r.stdout;
    expect(dom.match(/<section class="device" data-device="disk0"/g)).toHaveLength(1);
    expect(dom).toContain(`data-switches="${switches}">${switches} switches`);
    for (const g of ['guest1', 'guest2', 'guest3']) expect(dom).toMatch(new RegExp(`<tr data-guest="${g}"><td>${g}</td><td>\\d+\\.\\d %`));
    // ECharts ran: each chart div is marked and holds its canvas.
    const charts = [...dom.matchAll(/<div class="chart [^"]*" data-chart="(\w+)" data-device="disk0" [^>]*data-rendered="yes"[^>]*>(.*?)<\/div>/gs)];
    expect(charts.map((m) => m[1]).sort()).toEqual(['shares', 'timeline', 'waits']);
    for (const m of charts) expect(m[2]).toContain('<canvas');
    // The first span's accesses, listed as a click on its bar lists them.
    const span = /<h4 data-span="0" data-span-accesses="(\d+)">(guest\d) owned disk0 from .*? (\d+) accesses/.exec(dom);
    expect(span, 'span 0 listed').not.toBeNull();
    const rows = dom.slice(dom.indexOf('<table class="span">')).split('</table>')[0].match(/<tr><td>/g) ?? [];
    expect(rows.length).toBe(Number(span![1]));
    expect(rows.length).toBeGreaterThan(0);
    expect(dom).toContain(`<td>${span![2]}</td><td>ATA_`);
  });

  it('a screenshot is not blank: many colours, the guests\' bars among them', () => {
    const png = join(dir, 'shot.png');
    const r = chromium(dir, [`--screenshot=${png}`, `file://${page}`]);
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const img = PNG.sync.read(readFileSync(png));
    expect(img.width).toBe(1280);
    const colours = new Map<number, number>();
    let sum = 0;
    let sq = 0;
    const n = img.width * img.height;
    for (let i = 0; i < n; i++) {
      const [R, G, B] = [img.data[4 * i], img.data[4 * i + 1], img.data[4 * i + 2]];
      const key = (R << 16) | (G << 8) | B;
      colours.set(key, (colours.get(key) ?? 0) + 1);
      const y = 0.299 * R + 0.587 * G + 0.114 * B;
      sum += y;
      sq += y * y;
    }
    const variance = sq / n - (sum / n) ** 2;
    expect(variance).toBeGreaterThan(200);
    expect(colours.size).toBeGreaterThan(50);
    // The timeline's and the share chart's bars: guest1, guest2, guest3's colours (client.js COLORS).
    for (const c of [0x4e79a7, 0xf28e2b, 0x59a14f]) expect(colours.get(c) ?? 0, `#${c.toString(16)}`).toBeGreaterThan(200);
  });
});
