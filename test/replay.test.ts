// `muxvisor replay`: recorded logs of the scripted driver (a 3-guest demo, one guest's window)
// and of the unmodified C ATA drivers (PIO and DMA under exec) re-driven against our ATA model
// and QEMU's IDE over qtest: no divergence. A log with a command the two handle differently
// (SET FEATURES to UDMA7: we abort, QEMU accepts) reports the first divergence at the status
// read after it (the alternate status its wait polls); --strict shows the IDENTIFY words that are normalised otherwise; a changed DMA
// write record is found.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, closeSync, openSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Access } from '../src/access.ts';
import { parseConfig } from '../src/config/load.ts';
import { runDiskDemo } from '../src/demo/disk-demo.ts';
import { AccessLog } from '../src/log/access-log.ts';
import { replay } from '../src/log/replay/replay.ts';
import { muxRouterFactory } from '../src/mux/router-factory.ts';
import { Supervisor } from '../src/supervisor.ts';
import { TRAP_BUILD_DIR } from '../src/trap/user.ts';
import { missing, titled } from './helpers/requires.ts';
import { buildTrap } from './helpers/trap-build.ts';

const CLI = fileURLToPath(new URL('../src/bin/muxvisor.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'muxvisor-replay-test-'));
const noQemu = missing('qemu');
const KINDS = noQemu ? ['ata'] : ['ata', 'qemu-ide'];

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 100_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A short register script against our ATA model, recorded: IDENTIFY, then SET FEATURES transfer mode UDMA7. */
async function recordUdma7(file: string): Promise<void> {
  const image = join(dir, 'udma7.img');
  const fd = openSync(image, 'w');
  ftruncateSync(fd, 4096 * 512);
  closeSync(fd);
  const config = parseConfig({ socket: join(dir, 'udma7.sock'), devices: [{ id: 'disk', kind: 'ata', backend: { type: 'file', path: image } }], guests: [{ name: 'probe', grants: [{ device: 'disk' }] }] });
  const log = new AccessLog(file);
  const sup = new Supervisor({ config, accessLog: log, createRouter: await muxRouterFactory(config, { recorder: log }) });
  await sup.start();
  await log.start(sup);
  const g = sup.attachLocalGuest('probe');
  const out = (addr: number, value: number) => g.access({ space: 'pio', addr, size: 1, dir: 'write', value });
  const inb = async (addr: number) => Number((await g.access({ space: 'pio', addr, size: 1, dir: 'read' })).value);
  const ready = async () => {
    for (let i = 0; i < 10_000 && (await inb(0x3f6)) & 0x80; i++) await new Promise((r) => setTimeout(r, 1));
  };
  await out(0x1f6, 0xa0);
  await out(0x1f7, 0xec); // IDENTIFY DEVICE
  await ready();
  await inb(0x1f7);
  await g.access({ space: 'pio', addr: 0x1f0, size: 2, dir: 'read', count: 256 } satisfies Access);
  await ready();
  await out(0x1f1, 0x03); // SET FEATURES: set transfer mode
  await out(0x1f2, 0x47); // UDMA mode 7: not a mode ATA-8 defines
  await out(0x1f7, 0xef);
  await ready();
  await inb(0x1f7); // ours: 51h (ERR), error ABRT; QEMU: 50h
  await inb(0x1f1);
  g.detach();
  await sup.close();
  await log.close();
}

let demoLog: string, pioLog: string, dmaLog: string, udma7Log: string;

beforeAll(async () => {
  buildTrap();
  demoLog = join(dir, 'demo.jsonl');
  pioLog = join(dir, 'pio.jsonl');
  dmaLog = join(dir, 'dma.jsonl');
  udma7Log = join(dir, 'udma7.jsonl');
  const exec = async (file: string, driver: string) => {
    const r = await cli(['exec', '--size-mib', '2', '--access-log', file, '--', `${TRAP_BUILD_DIR}/${driver}`, '--sectors', '16', '--seed', '3']);
    expect(r.stdout, r.stderr).toMatch(/verified/);
  };
  await Promise.all([
    runDiskDemo({ guests: 3, seconds: 30, policy: 'round-robin', backend: 'model', mode: 'mixed', seed: 9, maxOps: 12, maxSectors: 8, sizeMiB: 8, accessLog: demoLog }),
    exec(pioLog, 'ata-pio'),
    exec(dmaLog, 'ata-dma'),
    recordUdma7(udma7Log),
  ]);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('muxvisor replay', () => {
  for (const kind of KINDS) {
    it(`the scripted driver's log (guest2 of a 3-guest demo, its window, PIO and DMA) replays on ${kind} with no divergence`, async () => {
      const r = await replay({ log: demoLog, guest: 'guest2', deviceKind: kind });
      expect(r.divergence, JSON.stringify(r.divergence, null, 1)?.slice(0, 2000)).toBeUndefined();
      expect(r.accesses).toBeGreaterThan(12 * 8);
    }, 120_000);

    it(`the unmodified C drivers' logs (PIO, bus-master DMA) replay on ${kind} with no divergence (CLI)`, async () => {
      for (const log of [pioLog, dmaLog]) {
        const r = await cli(['replay', log, '--guest', 'exec', '--device-kind', kind]);
        expect(r.stdout, r.stderr).toMatch(new RegExp(`on ${kind}: \\d+ accesses, no divergence`));
        expect(r.stdout).toMatch(/normalised: IDENTIFY words 4-5 .*27-46 \(model number\)/);
        expect(r.code).toBe(0);
      }
    }, 120_000);
  }

  it('a command our model and the recorded device agree on replays on ata; a changed DMA write record is found', async () => {
    expect((await replay({ log: udma7Log, guest: 'probe', deviceKind: 'ata' })).divergence).toBeUndefined();
    const lines = readFileSync(dmaLog, 'utf8').trim().split('\n');
    const i = lines.findIndex((l) => l.includes('"kind":"dma"') && l.includes('"dir":"write"'));
    expect(i).toBeGreaterThan(0);
    const ev = JSON.parse(lines[i]);
    lines[i] = JSON.stringify({ ...ev, dma: { ...ev.dma, crc: '00000000' } });
    const bad = join(dir, 'dma-bad.jsonl');
    writeFileSync(bad, lines.join('\n') + '\n');
    const r = await replay({ log: bad, guest: 'exec', deviceKind: 'ata' });
    expect(r.divergence?.what).toBe('dma');
    expect(r.divergence?.expected).toMatch(/crc 00000000/);
  }, 60_000);

  it.skipIf(noQemu !== null)(titled('SET FEATURES UDMA7 (we abort, QEMU accepts): the first divergence is the status read after it, with the accesses before it; exit 1', noQemu), async () => {
    const r = await cli(['replay', udma7Log, '--guest', 'probe', '--device-kind', 'qemu-ide']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/first divergence at access \d+ \(.*udma7\.jsonl line \d+\)/);
    // Our model aborts at once (DRDY ERR, no DSC); QEMU completes the command.
    expect(r.stdout).toMatch(/ATA_REG_ALTSTATUS pio 0x3f6 read: expected 0x41, got 0x50/);
    expect(r.stdout).toMatch(/ATA_REG_CMD\s+0x1f7\s+= 0xef SET FEATURES/);
    expect(r.stdout).toMatch(/ATA_REG_NSECT\s+0x1f2\s+= 0x47/);
    expect(r.stdout).toMatch(/> .*ATA_REG_ALTSTATUS\s+0x3f6\s+-> 0x41 DRDY ERR/);
    const json = JSON.parse((await cli(['--json', 'replay', udma7Log, '--guest', 'probe', '--device-kind', 'qemu-ide'])).stdout);
    expect(json.ok).toBe(false);
    expect(json.divergence).toMatchObject({ reg: 'ATA_REG_ALTSTATUS', what: 'answer', expected: '0x41', got: '0x50' });
    expect(json.divergence.before.length).toBeLessThanOrEqual(20);
  }, 120_000);

  it.skipIf(noQemu !== null)(titled('--strict compares IDENTIFY in full: the first word that differs (word 4)', noQemu), async () => {
    const r = await replay({ log: pioLog, guest: 'exec', deviceKind: 'qemu-ide', strict: true });
    expect(r.divergence).toMatchObject({ reg: 'ATA_REG_DATA', what: 'data' });
    expect(r.divergence!.expected).toMatch(/^word 4 = 0x0000$/);
  }, 120_000);

  it('bad input: an unknown guest names the ones in the log; an unknown device kind is refused', async () => {
    await expect(replay({ log: pioLog, guest: 'nobody', deviceKind: 'ata' })).rejects.toThrow(/guest nobody has no accesses \(guests in the log: exec\)/);
    const r = await cli(['replay', pioLog, '--guest', 'exec', '--device-kind', 'floppy']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/floppy/);
  }, 60_000);
});
