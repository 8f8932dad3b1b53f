// `muxvisor bench` prints a table a person can read: each figure in its kind's unit (all
// throughputs MB/s, trapped accesses µs, MUX steps ns), with its meaning, target and whether it
// is met; `--json` keeps the modules' keys and values. Rendered from real bench runs (quick)
// and from figure objects shaped as the slow modules (kvm, flood) report them. No speed is
// asserted: only units, conversions and the met column's logic.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { collect } from '../src/cli/bench.ts';
import { CATALOG, KIND_UNITS, describeFigures, findEntry } from '../src/cli/bench-figures.ts';
import { benchTable } from '../src/cli/bench-table.ts';
import { TRAP_LIB } from '../src/trap/user.ts';
import { missingFile, titled } from './helpers/requires.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'src/bin/muxvisor.mjs');

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** The table's data rows by figure name: [value, unit, target, met, meaning]. */
function rows(table: string): Map<string, string[]> {
  const lines = table.split('\n');
  const header = lines[0];
  const cols = ['value', 'unit', 'target', 'met', 'what it means'].map((h) => header.indexOf(h));
  const out = new Map<string, string[]>();
  for (const l of lines.slice(2)) {
    if (l === '') break;
    const name = l.slice(0, l.indexOf(' '));
    // value is right-aligned and ends where "unit" starts.
    const value = l.slice(0, cols[1]).trim().split(/\s{2,}/).pop()!;
    out.set(name, [value, l.slice(cols[1], cols[2]).trim(), l.slice(cols[2], cols[3]).trim(), l.slice(cols[3], cols[4]).trim(), l.slice(cols[4]).trim()]);
  }
  return out;
}

describe('bench table', () => {
  it('real mux and fairness figures: every one described, one unit per kind, targets judged', async () => {
    const figures = await collect({ quick: true, only: ['mux', 'fairness'] });
    const described = describeFigures(figures);
    expect(described.filter((f) => !f.described).map((f) => f.key)).toEqual([]);
    const table = benchTable(described);
    expect(table.split('\n')[0]).toMatch(/^figure\s+value\s+unit\s+target\s+met\s+what it means$/);
    const r = rows(table);
    const fast = (figures['mux.decisionNs'] as { fast: number }).fast;
    expect(r.get('mux.decision.fast')!.slice(1, 3)).toEqual(['ns', '≤ 300 ns']);
    expect(r.get('mux.decision.fast')![3]).toBe(fast <= 300 ? 'yes' : 'NO');
    expect(r.get('mux.decision.xstate')!.slice(1, 4)).toEqual(['ns', '', '']);
    expect(r.get('mux.decision.xstate')![4]).toContain('xstate');
    expect(r.get('mux.access')![1]).toBe('ns');
    // Virtual time: the fairness figures are deterministic and on target.
    expect(r.get('fairness.jainEqual')!.slice(1, 4)).toEqual(['', '≥ 0.99', 'yes']);
    const err = figures['fairness.weightedShareError'] as number;
    expect(r.get('fairness.weightedShareError')!.slice(1, 4)).toEqual(['%', '≤ 2 %', 'yes']);
    expect(Number(r.get('fairness.weightedShareError')![0])).toBeCloseTo(err * 100, 1);
    expect(r.get('fairness.weightedShares')![0].split(', ').map(Number).reduce((a, b) => a + b)).toBeCloseTo(100, 0);
    expect(r.get('fairness.window')!.slice(0, 2)).toEqual(['100', 'ms']);
    // The decision time is this machine's (loaded or not): the count follows it, never asserted as met.
    expect(table).toMatch(new RegExp(`^${fast <= 300 ? 3 : 2} of 3 targets met\\.`, 'm'));
    for (const row of r.values()) expect(row[4].length).toBeGreaterThan(10);
  });

  const noTrap = missingFile(TRAP_LIB);
  it.skipIf(noTrap !== null)(titled('real trapped-access figures are in µs and their ratio is judged against 2×', noTrap), async () => {
    const figures = await collect({ quick: true, only: ['trap-user'] });
    expect(Object.keys(figures).filter((k) => k.endsWith('.error'))).toEqual([]);
    const r = rows(benchTable(describeFigures(figures)));
    for (const n of ['trap.user.floor', 'trap.user.mux', 'trap.user.socketMux']) {
      expect(r.get(n)![1]).toBe('µs');
      expect(Number(r.get(n)![0])).toBeGreaterThan(0);
    }
    const ratio = figures['trap.user.muxOverFloor'] as number;
    expect(r.get('trap.user.muxOverFloor')!.slice(1, 4)).toEqual(['×', '≤ 2 ×', ratio <= 2 ? 'yes' : 'NO']);
  });

  it('converts the slow modules\' figures to one unit per kind, judges a target that is another figure', () => {
    // Shaped as src/bench/kvm.ts, disk.ts and flood.ts report them (KiB/s, MB/s, sectors/s).
    const figures = {
      'trap.kvm.floorUs': 9.02,
      'trap.kvm.muxUs': 11.59,
      'trap.kvm.muxOverFloor': 1.29,
      'disk.kvm.pio.muxvisorKBps': 1000,
      'disk.kvm.dma.qemuKBps': 50_000,
      'disk.aggregateMBps': { '1': 15.77, '8': 14.7 },
      'disk.sharingEfficiency': 0.85,
      'flood.honestSectorsPerSec.quiet': 4000,
      'flood.rssGrowthMiB.flooded': 30,
      'flood.rssBoundMiB': 58.8,
      'flood.connectsRefused': 0,
      'kvm.error': 'no verified run',
    };
    const d = describeFigures(figures);
    const by = new Map(d.map((f) => [f.key, f]));
    expect(d.every((f) => f.described)).toBe(true);
    for (const f of d) expect(f.unit).toBe(KIND_UNITS[f.kind]);
    expect(d.filter((f) => f.kind === 'throughput').map((f) => f.unit)).toEqual(['MB/s', 'MB/s', 'MB/s', 'MB/s', 'MB/s']);
    expect(by.get('disk.kvm.pio.muxvisorKBps')!.value).toBeCloseTo(1.024, 6);
    expect(by.get('disk.kvm.dma.qemuKBps')!.value).toBeCloseTo(51.2, 6);
    expect(by.get('flood.honestSectorsPerSec.quiet')!.value).toBeCloseTo(2.048, 6);
    expect(by.get('disk.aggregateMBps.8')).toMatchObject({ name: 'disk.aggregate.8', value: 14.7, unit: 'MB/s' });
    expect(by.get('disk.sharingEfficiency')).toMatchObject({ met: false, target: { op: '>=', value: 0.9 } });
    expect(by.get('trap.kvm.muxOverFloor')).toMatchObject({ met: true });
    expect(by.get('flood.rssGrowthMiB.flooded')).toMatchObject({ met: true, target: { value: 58.8, of: 'flood.rssBound' } });
    expect(describeFigures({ ...figures, 'flood.rssGrowthMiB.flooded': 60 }).find((f) => f.key === 'flood.rssGrowthMiB.flooded')!.met).toBe(false);
    const table = benchTable(d);
    const r = rows(table);
    expect(r.get('disk.kvm.pio.muxvisor')!.slice(0, 2)).toEqual(['1.02', 'MB/s']);
    expect(r.get('flood.rssGrowth.flooded')!.slice(2, 4)).toEqual(['≤ 58.8 MiB (flood.rssBound)', 'yes']);
    expect(r.get('disk.sharingEfficiency')!.slice(2, 4)).toEqual(['≥ 0.9 ×', 'NO']);
    expect(r.get('kvm.error')).toEqual(['-', '', '', '', 'the kvm bench failed: no verified run']);
    expect(table).toMatch(/^3 of 4 targets met\./m);
    // Colour only when asked (a terminal without NO_COLOR): red for a missed target.
    expect(table).not.toContain('\x1b[');
    expect(benchTable(d, true)).toContain('\x1b[31mNO \x1b[0m');
  });

  it('an undescribed figure still shows, raw, marked as undescribed', () => {
    const [f] = describeFigures({ 'new.thingNs': 5 });
    expect(f).toMatchObject({ described: false, value: 5, meaning: expect.stringContaining('not described') });
  });

  it('every figure key a shipped bench module writes is described', () => {
    const dir = join(ROOT, 'src/bench');
    const keys = new Set<string>();
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const src = readFileSync(join(dir, file), 'utf8');
      // Figure keys are written as 'module.name...' literals, or templates over pio/dma.
      for (const m of src.matchAll(/['`]([a-z][a-z-]*\.[A-Za-z0-9.${}]+)['`]\s*[\]:]/g)) keys.add(m[1].replace(/\$\{\w+\}/g, 'pio'));
    }
    expect(keys.size).toBeGreaterThan(20);
    // An object figure ({fast, xstate}, {1, 2, 4, 8}) is described by entries for its members.
    const undescribed = [...keys].filter((k) => !findEntry(k) && !CATALOG.some((e) => e.key.source.startsWith(`^${k.replace(/\./g, '\\.')}\\.`)));
    expect(undescribed).toEqual([]);
  });

  it('the CLI prints the table; --json keeps the modules\' keys and raw values', async () => {
    const [table, json] = await Promise.all([cli(['bench', '--quick', '--only', 'fairness'], { NO_COLOR: '1' }), cli(['--json', 'bench', '--quick', '--only', 'fairness'])]);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^figure\s+value\s+unit/);
    expect(rows(table.stdout).get('fairness.jainEqual')![3]).toBe('yes');
    expect(table.stdout).not.toContain('\x1b[');
    expect(json.code).toBe(0);
    const out = JSON.parse(json.stdout);
    expect(Object.keys(out)).toEqual(['fairness.jainEqual', 'fairness.weightedShareError', 'fairness.weightedShares', 'fairness.windowMs']);
    expect(out['fairness.windowMs']).toBe(100);
  });
});
