// Nothing lost: a guest on a real `muxvisor run` process writes through the ATA MUX to a raw
// image file and gets FLUSH CACHE acknowledged; the supervisor is SIGKILLed right after the
// acknowledgement; every flushed sector is in the image file.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { PeerClient } from '../src/channel/peer-client.ts';
import { AtaDriver } from '../src/guests/ata-driver.ts';
import { stampSector } from '../src/guests/ata-workload.ts';

const CLI = join(import.meta.dirname, '..', 'src', 'bin', 'muxvisor.mjs');
let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

it('every sector written before an acknowledged flush survives a SIGKILL of the supervisor', async () => {
  dir = mkdtempSync(join(tmpdir(), 'mv-durable-'));
  const image = join(dir, 'disk.img');
  writeFileSync(image, Buffer.alloc(8 << 20));
  const socket = join(dir, 'mv.sock');
  const WINDOW_START = 2048;
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      socket,
      devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'file', path: image } }],
      guests: [{ name: 'g1', grants: [{ device: 'disk0', window: { startLba: WINDOW_START, sectors: 8192 } }] }],
    }),
  );
  const sup = spawn(process.execPath, [CLI, '--log-level', 'warn', 'run', join(dir, 'config.json')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  sup.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((r) => sup.once('exit', (_c, sig) => r(sig)));
  try {
    await waitFor(() => existsSync(socket) || sup.exitCode !== null, 'the supervisor socket');
    expect(sup.exitCode, stderr).toBeNull();
    const client = await PeerClient.connect(socket, { guest: 'g1' });
    const driver = new AtaDriver(client);
    const id = await driver.identify();
    expect(id.sectors).toBe(8192); // the window, not the 8 MiB disk
    expect(id.writeCache).toBe(true); // the flush is what makes the writes durable

    const runs = [
      { lba: 0, count: 8 },
      { lba: 100, count: 37 },
      { lba: 4000, count: 1 },
      { lba: 8191 - 15, count: 16 },
    ];
    for (const [i, r] of runs.entries()) {
      const data = new Uint8Array(r.count * 512);
      for (let k = 0; k < r.count; k++) stampSector(data, k * 512, 0xd00d, r.lba + k, i + 1);
      await driver.writePio(r.lba, data);
    }
    await driver.flush(); // acknowledged: status ready, no ERR
    sup.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const disk = readFileSync(image);
    const expected = new Uint8Array(512);
    for (const [i, r] of runs.entries()) {
      for (let k = 0; k < r.count; k++) {
        stampSector(expected, 0, 0xd00d, r.lba + k, i + 1);
        const at = (WINDOW_START + r.lba + k) * 512;
        expect(Buffer.from(disk.subarray(at, at + 512)).equals(Buffer.from(expected)), `guest LBA ${r.lba + k}`).toBe(true);
      }
    }
    // Nothing landed outside the guest's window.
    expect(disk.subarray(0, WINDOW_START * 512).every((b) => b === 0)).toBe(true);
    client.destroy();
  } finally {
    if (sup.exitCode === null && sup.signalCode === null) sup.kill('SIGKILL');
  }
});
