// File backend on real temp files: data round trips, durability ordering, sticky sync failure.

import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackendError } from '../src/backends/block.ts';
import { openFileBackend } from '../src/backends/file.ts';
import { makeRig, pattern, firstDiff } from './helpers/ata-driver.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mv-file-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('file backend', () => {
  it('creates a sized image, writes, flushes, and another handle sees the bytes', async () => {
    const path = join(dir, 'disk.img');
    const blk = await openFileBackend(path, { createSectors: 2048 });
    expect(blk.sectors).toBe(2048);
    expect(statSync(path).size).toBe(2048 * 512);
    const data = pattern(8, 3);
    await blk.write(100, data);
    await blk.flush();
    const onDisk = readFileSync(path); // a separate file description
    expect(firstDiff(new Uint8Array(onDisk.subarray(100 * 512, 108 * 512)), data)).toBe(-1);
    expect(firstDiff(await blk.read(100, 8), data)).toBe(-1);
    expect(firstDiff(await blk.read(0, 1), new Uint8Array(512))).toBe(-1);
    await blk.close();
  });

  it('opens an existing image without truncating it; sizes from the file', async () => {
    const path = join(dir, 'old.img');
    writeFileSync(path, pattern(10, 1));
    const blk = await openFileBackend(path, { createSectors: 99 });
    expect(blk.sectors).toBe(10);
    expect(firstDiff(await blk.read(9, 1), pattern(10, 1).subarray(9 * 512))).toBe(-1);
    await blk.close();
  });

  it('rejects out-of-range, partial-sector and read-only writes with BackendError', async () => {
    const path = join(dir, 'ro.img');
    writeFileSync(path, new Uint8Array(4 * 512));
    const rw = await openFileBackend(path);
    await expect(rw.read(3, 2)).rejects.toThrow(/outside the image/);
    await expect(rw.write(0, new Uint8Array(100))).rejects.toBeInstanceOf(BackendError);
    await rw.close();
    const ro = await openFileBackend(path, { readOnly: true });
    expect(ro.readOnly).toBe(true);
    await expect(ro.write(0, new Uint8Array(512))).rejects.toThrow(/read-only/);
    await ro.close();
    await expect(openFileBackend(join(dir, 'missing.img'))).rejects.toThrow(/cannot open image/);
  });

  it('FUA writes and flushes call the sync; a sync failure is sticky for every later flush', async () => {
    // A real fdatasync EIO cannot be provoked without a failing block device (dm-error or
    // similar), so the barrier is injected; everything else is real file I/O.
    let syncs = 0;
    let failNext = false;
    const blk = await openFileBackend(join(dir, 'sticky.img'), {
      createSectors: 64,
      sync: async (fh) => {
        syncs++;
        if (failNext) {
          failNext = false;
          throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
        }
        await fh.datasync();
      },
    });
    await blk.write(0, pattern(1, 1));
    expect(syncs).toBe(0);
    await blk.write(1, pattern(1, 2), true);
    expect(syncs).toBe(1);
    await blk.flush();
    expect(syncs).toBe(2);
    failNext = true;
    await expect(blk.flush()).rejects.toThrow(/fdatasync failed: EIO/);
    // The sync would succeed now, but the error stays: lost dirty pages are not written again.
    await expect(blk.flush()).rejects.toThrow(/earlier fdatasync failed/);
    await expect(blk.write(2, pattern(1, 3), true)).rejects.toThrow(/earlier fdatasync failed/);
    expect(syncs).toBe(3);
    await blk.close();
  });

  it('a flush waits for writes issued before it', async () => {
    const order: string[] = [];
    const blk = await openFileBackend(join(dir, 'order.img'), {
      createSectors: 4096,
      sync: async (fh) => {
        order.push('sync');
        await fh.datasync();
      },
    });
    const big = pattern(2048, 9);
    const w = blk.write(0, big).then(() => order.push('write'));
    const f = blk.flush();
    await Promise.all([w, f]);
    expect(order).toEqual(['write', 'sync']);
    await blk.close();
  });

  it('serves the ATA model: a PIO write + FLUSH CACHE lands in the file', async () => {
    const path = join(dir, 'ata.img');
    const blk = await openFileBackend(path, { createSectors: 1000 });
    const { drv, dev } = makeRig(blk);
    drv.issue28(0x30, 5, 2);
    await drv.pioOut(pattern(2, 4));
    await drv.waitNotBusy();
    drv.issue28(0xe7, 0, 0);
    expect((await drv.waitNotBusy()) & 0x01).toBe(0);
    expect(new Uint8Array(readFileSync(path).subarray(5 * 512, 7 * 512))).toEqual(pattern(2, 4));
    await dev.close();
  });
});
