// The registry factory: backend configs (memory, file, nbd) and property validation.

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAta, openBlockBackend } from '../src/devices/ata/index.ts';
import { AtaDriver, IrqProbe, GuestRam, pattern, firstDiff } from './helpers/ata-driver.ts';
import { startNbdkit } from './helpers/nbd-server.ts';
import type { AtaDevice } from '../src/devices/ata/index.ts';
import { missing, titled } from './helpers/requires.ts';

const edges = () => ({ irq: new IrqProbe(), dma: new GuestRam(0, 0x1000), clock: () => 0 });

describe('createAta', () => {
  it('builds a device over a memory backend with IDENTIFY properties', async () => {
    const dev = (await createAta({ id: 'd0', edges: edges(), backend: { type: 'memory', sizeMiB: 1 }, properties: { model: 'CFG DISK', writeCache: false } })) as AtaDevice;
    const props = Object.fromEntries(dev.describe().properties.map((p) => [p.name, p.value]));
    expect(props).toMatchObject({ model: 'CFG DISK', sectors: 2048, writeCache: false });
    await dev.close();
  });

  it('creates a file image of sizeMiB and round-trips a sector through PIO', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mv-fac-'));
    try {
      const path = join(dir, 'd.img');
      const dev = (await createAta({ edges: edges(), backend: { type: 'file', path, sizeMiB: 2, create: true }, properties: {} })) as AtaDevice;
      expect(statSync(path).size).toBe(2 * 1024 * 1024);
      const drv = new AtaDriver(dev);
      drv.issue28(0x30, 7, 1);
      await drv.pioOut(pattern(1, 3));
      await drv.waitNotBusy();
      drv.issue28(0x20, 7, 1);
      expect(firstDiff(await drv.pioIn(1), pattern(1, 3))).toBe(-1);
      await dev.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(missing('nbdkit') !== null)(titled('opens an NBD backend from { type: nbd, socket }', missing('nbdkit')), async () => {
    const s = await startNbdkit(['memory', '1M']);
    try {
      const blk = await openBlockBackend({ type: 'nbd', socket: s.socket });
      expect(blk.sectors).toBe(2048);
      await blk.close();
    } finally {
      await s.stop();
    }
  });

  it('rejects bad configs with messages naming the field', async () => {
    await expect(createAta({ id: 'x', edges: edges(), backend: { type: 'memory' }, properties: {} })).rejects.toThrow(/device x.*sizeMiB/);
    await expect(createAta({ id: 'x', edges: edges(), backend: { type: 'nbd' }, properties: {} })).rejects.toThrow(/socket/);
    await expect(createAta({ id: 'x', edges: edges(), backend: { type: 'memory', sizeMiB: 1 }, properties: { modle: 'typo' } })).rejects.toThrow(/modle/);
    await expect(openBlockBackend({ type: 'file', path: '/nonexistent/x.img', create: true })).rejects.toThrow(/sizeMiB/);
  });
});
