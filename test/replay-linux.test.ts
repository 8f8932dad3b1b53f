// Replay of an unmodified Linux guest's accesses (issue: the driver developer's workbench,
// "Replay against another device"): the guest kit's probe workload (libata's reset and
// classification, IDENTIFY, SET FEATURES, the partition scan, the flush and STANDBY IMMEDIATE
// at power-off) runs under `muxvisor run --access-log` on our ATA model, through QEMU's proxy;
// then `muxvisor replay` re-drives the guest's recorded accesses against our model (no
// divergence) and against QEMU's own IDE over qtest, which differs from our model at one
// command both support: STANDBY IMMEDIATE leaves DSC clear in QEMU (status 40h), set in ours.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mpqemuAddonMissing } from '../src/trap/mpqemu/native.ts';
import { missing, titled } from './helpers/requires.ts';

const why = missing('qemu', 'linux-kit') ?? mpqemuAddonMissing();
const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'src', 'bin', 'muxvisor.mjs');

describe.skipIf(why !== null)(titled('replay of a Linux guest\'s accesses against our ATA model and QEMU\'s IDE', why), () => {
  let dir = '';
  let log = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'muxvisor-replay-linux-'));
    const image = join(dir, 'disk.img');
    writeFileSync(image, '');
    truncateSync(image, 16 * 1024 * 1024);
    log = join(dir, 'lin.jsonl');
    const config = {
      socket: join(dir, 'mv.sock'),
      devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'file', path: image } }],
      guests: [{ name: 'lin', run: { type: 'qemu', append: 'muxvisor.workload=probe muxvisor.guest=lin', console: join(dir, 'lin.log') }, grants: [{ device: 'disk0' }] }],
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    await run(process.execPath, [CLI, '--log-level', 'warn', 'run', join(dir, 'config.json'), '--exit-when-done', '--access-log', log], { timeout: 200_000 });
  }, 220_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const replay = async (kind: string): Promise<{ code: number; out: string }> => {
    try {
      const { stdout } = await run(process.execPath, [CLI, '--log-level', 'error', 'replay', log, '--guest', 'lin', '--device-kind', kind], { timeout: 120_000, maxBuffer: 8 << 20 });
      return { code: 0, out: stdout };
    } catch (e) {
      const err = e as { code?: number; stdout?: string };
      return { code: err.code ?? -1, out: err.stdout ?? '' };
    }
  };

  it('against our ATA model: every access answers as recorded', async () => {
    const r = await replay('ata');
    expect(r.out).toMatch(/^replay of guest lin \(device disk0\) from .* on ata: (\d+) accesses, no divergence$/m);
    expect(Number(/: (\d+) accesses/.exec(r.out)?.[1])).toBeGreaterThan(500);
    expect(r.code).toBe(0);
  });

  it("against QEMU's IDE: past the reset, IDENTIFY and the partition scan, the first divergence is STANDBY IMMEDIATE's status", async () => {
    const r = await replay('qemu-ide');
    expect(r.code, r.out).toBe(1);
    const head = r.out.split('\n');
    expect(head[0]).toMatch(/first divergence at access \d+/);
    expect(head[1]).toMatch(/ATA_REG_(ALT)?STATUS pio 0x(3f6|1f7) read: expected 0x50, got 0x40/);
    // The command before the divergence, in the context lines: STANDBY IMMEDIATE (E0h).
    const context = head.filter((l) => /ATA_REG_CMD/.test(l));
    expect(context.at(-1)).toMatch(/= 0xe0 STANDBY IMMEDIATE/);
  });
});
