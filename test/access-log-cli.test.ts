// `muxvisor exec --access-log` with the unmodified C ATA drivers, then `muxvisor log`:
// diff of two runs of the same driver finds no divergence; a different sector count and a
// modified record are found at the right access; show, stats and export --mmiotrace on the
// same logs.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRAP_BUILD_DIR } from '../src/trap/user.ts';
import type { AccessRecord } from '../src/log/record.ts';
import { buildTrap } from './helpers/trap-build.ts';

const CLI = fileURLToPath(new URL('../src/bin/muxvisor.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'muxvisor-log-cli-'));

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 50_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Run a C driver under exec with a log; returns the log's path. */
async function driverLog(name: string, driver: string, args: string[]): Promise<string> {
  const file = join(dir, name);
  const r = await cli(['exec', '--size-mib', '2', '--access-log', file, '--', `${TRAP_BUILD_DIR}/${driver}`, ...args]);
  expect(r.stdout).toMatch(/verified/);
  expect(r.code, r.stderr).toBe(0);
  driverOutput.push(r.stdout.trim());
  return file;
}

const records = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string });

let pioA: string, pioB: string, pio9: string, dmaA: string;
const driverOutput: string[] = [];

beforeAll(async () => {
  buildTrap();
  // Fixed seeds: the drivers' data patterns are the same run to run.
  [pioA, pioB, pio9, dmaA] = await Promise.all([
    // One command per pass (--batch 16): the first WRITE SECTORS carries the sector count.
    driverLog('pio-a.jsonl', 'ata-pio', ['--sectors', '8', '--batch', '16', '--seed', '7']),
    driverLog('pio-b.jsonl', 'ata-pio', ['--sectors', '8', '--batch', '16', '--seed', '7']),
    driverLog('pio-9.jsonl', 'ata-pio', ['--sectors', '9', '--batch', '16', '--seed', '7']),
    driverLog('dma-a.jsonl', 'ata-dma', ['--sectors', '8', '--seed', '7']),
  ]);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('muxvisor log', () => {
  it("the program's own output stays on its stdout, out of the log", () => {
    for (const file of [pioA, dmaA]) {
      const text = readFileSync(file, 'utf8');
      expect(text).not.toMatch(/verified|ata-pio:|ata-dma:/);
    }
    expect(driverOutput.join('\n')).toMatch(/ata-pio: model .*verified/);
  });

  it('diff: two runs of the unmodified C PIO driver have no divergence', async () => {
    const r = await cli(['log', 'diff', pioA, pioB]);
    expect(r.stdout).toMatch(/^guest exec: no divergence \(\d+ steps/);
    expect(r.code).toBe(0);
  }, 60_000);

  it('diff: a different sector count diverges at the first NSECT write, with context', async () => {
    const r = await cli(['log', 'diff', pioA, pio9]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/first divergence at step \d+/);
    expect(r.stdout).toMatch(/^A .*ATA_REG_NSECT\s+0x1f2\s+= 0x8$/m);
    expect(r.stdout).toMatch(/^B .*ATA_REG_NSECT\s+0x1f2\s+= 0x9$/m);
    // The context before it: the LBA-mode DEVICE write that starts the command's task file.
    expect(r.stdout).toMatch(/same in both:\n(.*\n)*.*ATA_REG_DEVICE\s+0x1f6\s+= 0xe0\nA /);
  }, 60_000);

  it('diff: a modified record (one status answer) is found at its line', async () => {
    const lines = readFileSync(pioA, 'utf8').trim().split('\n');
    // The 6th STATUS read: change its answer to ERR set.
    const idx = lines.map((l, i) => [l, i] as const).filter(([l]) => l.includes('"reg":"ATA_REG_STATUS"'))[5][1];
    const rec = JSON.parse(lines[idx]) as AccessRecord;
    lines[idx] = JSON.stringify({ ...rec, answer: 0x51 });
    const bad = join(dir, 'pio-modified.jsonl');
    writeFileSync(bad, lines.join('\n') + '\n');
    const r = await cli(['--json', 'log', 'diff', pioA, bad]);
    expect(r.code).toBe(1);
    const d = JSON.parse(r.stdout) as { same: boolean; guests: { divergence: { a: { line: number; rec: AccessRecord }; b: { line: number; rec: AccessRecord } } }[] };
    expect(d.same).toBe(false);
    const v = d.guests[0].divergence;
    expect(v.b.line).toBe(idx + 1);
    expect(v.b.rec.answer).toBe(0x51);
    expect(v.a.rec.reg).toBe('ATA_REG_STATUS');
  }, 60_000);

  it('show: one line per access with register names and decoded commands; filters', async () => {
    const all = await cli(['log', 'show', pioA]);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/exec\s+pio\s+w\s+ATA_REG_CMD\s+0x1f7\s+= 0xec IDENTIFY DEVICE/);
    expect(all.stdout).toMatch(/exec\s+pio\s+w\s+ATA_REG_CMD\s+0x1f7\s+= 0x30 WRITE SECTORS/);
    expect(all.stdout).toMatch(/ATA_REG_DATA\s+0x1f0\s+x256 -> 512 B crc [0-9a-f]{8}/);
    // Events too: the IRQ edges of the pass-through disk.
    expect(all.stdout).toMatch(/exec\s+disk\s+irq raise/);
    const accesses = records(pioA).filter((r) => r.type === 'access').length;
    const events = records(pioA).filter((r) => r.type === 'event').length;
    expect(all.stdout.trim().split('\n')).toHaveLength(accesses + events);
    expect((await cli(['log', 'show', pioA, '--no-events'])).stdout.trim().split('\n')).toHaveLength(accesses);
    const cmd = await cli(['log', 'show', pioA, '--register', 'ATA_REG_CMD']);
    const cmdLines = cmd.stdout.trim().split('\n');
    expect(cmdLines.every((l) => /ATA_REG_CMD/.test(l))).toBe(true);
    expect(cmdLines.length).toBeGreaterThanOrEqual(3); // IDENTIFY, WRITE, FLUSH, READ ...
    expect((await cli(['log', 'show', pioA, '--guest', 'nobody'])).stdout).toBe('');
    // --from in ns: the accesses from the 20th on.
    const ts = records(pioA).filter((x): x is AccessRecord => x.type === 'access').map((a) => a.t);
    const from = await cli(['log', 'show', pioA, '--no-events', '--from', String(ts[19])]);
    expect(from.stdout.trim().split('\n')).toHaveLength(ts.filter((t) => t >= ts[19]).length);
    const bad = await cli(['log', 'show', pioA, '--from', 'soon']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--from: expected a time such as 1\.5s/);
  }, 60_000);

  it('stats --json: counts per guest and register agree with the log', async () => {
    const r = await cli(['--json', 'log', 'stats', dmaA]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as { registers: { reg: string; reads: number; writes: number }[]; guests: { guest: string; accesses: number }[] };
    const acc = records(dmaA).filter((x): x is AccessRecord => x.type === 'access');
    expect(s.guests).toEqual([expect.objectContaining({ guest: 'exec', accesses: acc.length })]);
    const cmd = s.registers.find((x) => x.reg === 'ATA_REG_CMD')!;
    expect(cmd.writes).toBe(acc.filter((a) => a.reg === 'ATA_REG_CMD').length);
    expect(s.registers.find((x) => x.reg === 'ATA_DMA_CMD')!.writes).toBeGreaterThan(0);
  }, 60_000);

  it('export --mmiotrace: VERSION, MAPs, one R/W per access (string accesses with their bytes per element, others a MARK), every line in the format', async () => {
    const out = join(dir, 'pio.mmiotrace');
    const r = await cli(['log', 'export', '--mmiotrace', pioA, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('VERSION 20070824');
    const rw = /^[RW] [124] \d+\.\d{6} \d+ 0x[0-9a-f]+ 0x[0-9a-f]+ 0x0 0$/;
    const map = /^MAP \d+\.\d{6} \d+ 0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+ 0x0 0$/;
    const mark = /^MARK \d+\.\d{6} .+$/;
    for (const l of lines.slice(1)) expect(rw.test(l) || map.test(l) || mark.test(l), l).toBe(true);
    const acc = records(pioA).filter((x): x is AccessRecord => x.type === 'access');
    const single = acc.filter((a) => a.count === 1).length;
    const withBytes = acc.filter((a) => a.count > 1 && typeof (a.dir === 'w' ? a.data : a.answerData)?.bytes === 'string');
    expect(lines.filter((l) => rw.test(l))).toHaveLength(single + withBytes.reduce((n, a) => n + a.count, 0));
    const digestOnly = acc.filter((a) => a.count > 1).length - withBytes.length;
    expect(digestOnly).toBeGreaterThan(0); // sector reads: length and CRC only
    expect(lines.filter((l) => /^MARK .* read x256 of 2 at 0x1f0: 512 B crc [0-9a-f]{8}$/.test(l))).toHaveLength(digestOnly);
    expect(lines).toContain('W 1 ' + lines.find((l) => / 0x1f7 0xec /.test(l))!.slice(4)); // IDENTIFY to the command port
    expect(lines.filter((l) => l.startsWith('MAP ')).length).toBeGreaterThanOrEqual(2); // 0x1f0 block and 0x3f6
  }, 60_000);
});
