// `muxvisor demo --guests 4 --seconds S --json` with each backend: every guest verified,
// errors 0, unsafeSwitches 0, switches > 0; stdout carries only the JSON summary.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { missing, titled } from './helpers/requires.ts';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'src', 'bin', 'muxvisor.mjs');
const qemuMissing = missing('qemu');
const nbdkitMissing = missing('nbdkit');

async function demo(backend: string, extra: string[] = []): Promise<unknown> {
  const { stdout } = await run(process.execPath, [CLI, '--log-level', 'warn', 'demo', '--guests', '4', '--seconds', '2', '--backend', backend, '--json', ...extra], {
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout); // throws if anything but the JSON document reached stdout
}

function expectShared(summary: unknown): void {
  const s = summary as { devices: { id: string; kind: string; switches: number; unsafeSwitches: number; resets: number; perGuest: { guest: string; ops: number; bytes: number; errors: number; verified: boolean }[] }[] };
  expect(Object.keys(s)).toEqual(['devices']);
  expect(s.devices).toHaveLength(1);
  const d = s.devices[0];
  expect(Object.keys(d).sort()).toEqual(['id', 'kind', 'perGuest', 'resets', 'switches', 'unsafeSwitches']);
  expect(d.kind).toBe('ata');
  expect(d.switches).toBeGreaterThan(0);
  expect(d.unsafeSwitches).toBe(0);
  expect(d.perGuest.map((g) => g.guest)).toEqual(['guest1', 'guest2', 'guest3', 'guest4']);
  for (const g of d.perGuest) {
    expect(Object.keys(g).sort()).toEqual(['bytes', 'errors', 'guest', 'ops', 'verified']);
    expect(g.errors, g.guest).toBe(0);
    expect(g.verified, g.guest).toBe(true);
    expect(g.ops).toBeGreaterThan(0);
    expect(g.bytes).toBeGreaterThan(0);
  }
}

describe('the disk demo', () => {
  it('model backend: four guests share one disk, all verified', async () => {
    expectShared(await demo('model'));
  });

  it('model backend with the weighted-fair policy and DMA only', async () => {
    expectShared(await demo('model', ['--policy', 'weighted-fair', '--mode', 'dma']));
  });

  it.skipIf(nbdkitMissing !== null)(titled('nbd backend (real nbdkit)', nbdkitMissing), async () => {
    expectShared(await demo('nbd'));
  });

  it.skipIf(qemuMissing !== null)(titled("qemu backend (QEMU's own IDE over qtest)", qemuMissing), async () => {
    expectShared(await demo('qemu'));
  });

  it('a bad option is a clear error', async () => {
    await expect(run(process.execPath, [CLI, 'demo', '--guests', 'zero'])).rejects.toMatchObject({ stderr: expect.stringContaining('guests must be a whole number') });
  });
});
