// `muxvisor run CONFIG --exit-when-done` starts the guests the config describes — a scripted
// driver, an unmodified user-mode driver under the trap shim, a KVM guest — on one ATA disk,
// each in its own window; all finish verified and the supervisor exits 0.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, expect, it } from 'vitest';
import { TRAP_BUILD_DIR } from '../src/trap/user.ts';
import { missing as needs, missingFile, titled } from './helpers/requires.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'src', 'bin', 'muxvisor.mjs');
const KVM_GUEST = join(ROOT, 'native', 'guests', 'build', 'ata-driver.elf');
const ATA_PIO = join(TRAP_BUILD_DIR, 'ata-pio');
const missing = needs('kvm') ?? missingFile(KVM_GUEST) ?? missingFile(ATA_PIO);

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it.skipIf(missing !== null)(titled('run starts scripted, user-mode and KVM guests from the config', missing), async () => {
  dir = mkdtempSync(join(tmpdir(), 'mv-launch-'));
  const W = 4096;
  const config = {
    socket: join(dir, 'mv.sock'),
    devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'file', path: join(dir, 'disk.img'), sizeMiB: 8, create: true } }],
    guests: [
      { name: 'script', run: { type: 'scripted', driver: 'ata', options: { seconds: 1 } }, grants: [{ device: 'disk0', window: { startLba: 0, sectors: W } }] },
      { name: 'user', run: { type: 'user', argv: [ATA_PIO, '--sectors', '64'] }, grants: [{ device: 'disk0', window: { startLba: W, sectors: W } }] },
      {
        name: 'vm',
        run: { type: 'kvm', image: KVM_GUEST, options: { cmdline: 'mode=dma tag=vm sectors=256' } },
        grants: [{ device: 'disk0', window: { startLba: 2 * W, sectors: W } }],
      },
    ],
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const { stdout } = await run(process.execPath, [CLI, '--log-level', 'warn', '--json', 'run', join(dir, 'config.json'), '--exit-when-done'], { timeout: 120_000, maxBuffer: 4 << 20 });
  const events = stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; guest?: string; ok?: boolean; detail?: string; signal?: string; stats?: { devices: { unsafeSwitches: number; switches: number }[] } });
  const guests = events.filter((e) => e.event === 'guest');
  expect(guests.map((g) => g.guest).sort()).toEqual(['script', 'user', 'vm']);
  for (const g of guests) expect(g.ok, `${g.guest}: ${g.detail}`).toBe(true);
  const stopped = events.find((e) => e.event === 'stopped')!;
  expect(stopped.signal).toBe('done');
  expect(stopped.stats!.devices[0].unsafeSwitches).toBe(0);
  expect(stopped.stats!.devices[0].switches).toBeGreaterThan(0);
});
