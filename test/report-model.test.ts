// The report's model from log records: ownership spans from switch/release events, unsafe spans
// from the ATA chart's own safe tags, merged waits, each span's accesses by when they were
// served, shares; and a log cannot make the report load a module it names.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { AccessRecord, EventRecord, HeaderRecord, LogRecord } from '../src/log/record.ts';
import { buildReport } from '../src/report/model.ts';
import { safeStates } from '../src/report/safe-states.ts';

const header: HeaderRecord = {
  type: 'header',
  version: 1,
  tool: 'muxvisor test',
  started: '2026-01-01T00:00:00.000Z',
  devices: [{ id: 'disk0', kind: 'ata', machine: 'ata', regions: [], properties: {} }],
  guests: [
    { name: 'a', windows: {} },
    { name: 'b', windows: {} },
  ],
};
const acc = (t: number, guest: string, after: string, stallNs = 0, ns = 10): AccessRecord => ({
  type: 'access', t, guest, device: 'disk0', space: 'pio', addr: 0x1f7, reg: 'ATA_REG_STATUS', dir: 'r', size: 1, count: 1, answer: 0x50, after, stallNs, ns,
});
const ev = (t: number, kind: string, guest?: string, extra: Partial<EventRecord> = {}): EventRecord => ({ type: 'event', t, device: 'disk0', kind, guest, ...extra });

describe('report model', () => {
  it('spans, unsafe spans, waits, shares and each span\'s accesses', async () => {
    const records: LogRecord[] = [
      header,
      ev(100, 'switch', 'a'),
      acc(90, 'a', 'pioIn.busy'), // arrived before the grant, served at 110: a's span
      acc(200, 'a', 'idle'),
      acc(150, 'b', 'idle', 400), // waited 150-550, served at 550: b's span
      acc(160, 'b', 'idle', 390), // overlapping stall: one wait
      ev(500, 'release', 'a'),
      ev(540, 'switch', 'b'),
      ev(600, 'irq', 'b', { level: true }),
      ev(610, 'irq', 'b', { level: false }),
      acc(700, 'b', 'dma.active'),
      ev(900, 'reset', 'b'),
      { type: 'end', t: 1000, accesses: 5, events: 6, blocked: 0 },
    ];
    const r = await buildReport('x.jsonl', records, safeStates);
    const d = r.devices[0];
    expect(r.guests).toEqual(['a', 'b']);
    expect(d.spans).toEqual([[100, 500, 0], [540, 1000, 1]]);
    expect(d).toMatchObject({ switches: 2, resets: 1, irqs: 1, accesses: 5 });
    // pioIn.busy is unsafe until idle; dma.active is unsafe to the end.
    expect(d.unsafe).toEqual([[90, 210], [700, 1000]]);
    expect(d.waits).toEqual([[150, 550, 1]]);
    expect(d.spanTotals).toEqual([2, 3]);
    expect(d.spanAccesses[0].map((x) => x[0])).toEqual([90, 200]);
    expect(d.spanAccesses[1].map((x) => x[0])).toEqual([150, 160, 700]);
    expect(d.shares.map((s) => [s.guest, s.ownedNs, Number(s.share.toFixed(3)), s.stalled, s.maxWaitNs])).toEqual([
      ['a', 400, 0.465, 0, 0],
      ['b', 460, 0.535, 2, 400],
    ]);
    expect(d.waitHistogram).toEqual([[0, 0, 0, 0, 0, 0], [2, 0, 0, 0, 0, 0]]); // 390 and 400 ns: under 10 µs
  });

  it('loads only a shipped machine: a module path in a log is never imported', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mvreport-model-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const marker = join(dir, 'imported');
    const evil = join(dir, 'evil.ts');
    writeFileSync(evil, `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'x');\nexport default {};\n`);
    const safe = await safeStates(evil, [ev(1, 'switch', 'a', { state: 'weird', safe: false })]);
    expect(existsSync(marker)).toBe(false);
    expect(safe('weird')).toBe(false); // the events' evidence
    expect(safe('idle')).toBeUndefined();
    const ata = await safeStates('ata', []);
    expect([ata('idle'), ata('pioIn.busy'), ata('nosuch')]).toEqual([true, false, undefined]);
  });
});
