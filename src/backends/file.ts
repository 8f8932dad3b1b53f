// Raw image file backend: positional reads/writes on one FileHandle, fdatasync for durability.
// An fdatasync failure is sticky (like Linux's errseq_t on the file): that flush and every
// later one fails, because the kernel may already have dropped the dirty pages it could not write.

import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { BackendError, SECTOR, type BlockBackend } from './block.ts';

export interface FileBackendOptions {
  readOnly?: boolean;
  /** Create the image with this many sectors when the file does not exist (sparse). */
  createSectors?: number;
  /** Durability barrier; default `fh.datasync()` (fdatasync). Injectable to test failures. */
  sync?: (fh: FileHandle) => Promise<void>;
}

export class FileBackend implements BlockBackend {
  readonly name: string;
  readonly canTrim = false;
  private syncError: Error | null = null;
  private readonly inflightWrites = new Set<Promise<unknown>>();
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly sectors: number,
    readonly readOnly: boolean,
    private readonly syncFn: (fh: FileHandle) => Promise<void>,
  ) {
    this.name = `file:${path}`;
  }

  static async open(path: string, options: FileBackendOptions = {}): Promise<FileBackend> {
    const readOnly = options.readOnly ?? false;
    let fh: FileHandle;
    try {
      fh = await fs.open(path, readOnly ? 'r' : 'r+');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || options.createSectors === undefined || readOnly) {
        throw new BackendError(`file:${path}`, `cannot open image: ${(e as Error).message}`);
      }
      if (!Number.isSafeInteger(options.createSectors) || options.createSectors <= 0) {
        throw new BackendError(`file:${path}`, `bad size ${options.createSectors} sectors`);
      }
      // 'wx': create, never truncate a file that appeared meanwhile.
      fh = await fs.open(path, 'wx+').catch((err: Error) => {
        throw new BackendError(`file:${path}`, `cannot create image: ${err.message}`);
      });
      await fh.truncate(options.createSectors * SECTOR);
    }
    const { size } = await fh.stat();
    const sectors = Math.floor(size / SECTOR); // a trailing partial sector is not addressable
    if (sectors === 0) {
      await fh.close();
      throw new BackendError(`file:${path}`, `image is smaller than one sector (${size} bytes)`);
    }
    return new FileBackend(path, fh, sectors, readOnly, options.sync ?? ((h) => h.datasync()));
  }

  private check(op: string, lba: number, count: number): void {
    if (this.closed) throw new BackendError(this.name, `${op} after close`);
    if (!Number.isSafeInteger(lba) || !Number.isSafeInteger(count) || lba < 0 || count < 0 || lba + count > this.sectors) {
      throw new BackendError(this.name, `${op} of ${count} sectors at LBA ${lba} is outside the image (${this.sectors} sectors)`);
    }
  }

  async read(lba: number, count: number): Promise<Uint8Array> {
    this.check('read', lba, count);
    const buf = new Uint8Array(count * SECTOR);
    let done = 0;
    while (done < buf.length) {
      let n: number;
      try {
        ({ bytesRead: n } = await this.fh.read(buf, done, buf.length - done, lba * SECTOR + done));
      } catch (e) {
        throw new BackendError(this.name, `read at LBA ${lba} (${count} sectors): ${(e as Error).message}`);
      }
      if (n === 0) break; // past EOF (file shrank): the rest reads as zeros
      done += n;
    }
    return buf;
  }

  async write(lba: number, data: Uint8Array, fua = false): Promise<void> {
    if (data.length % SECTOR !== 0) throw new BackendError(this.name, `write of ${data.length} bytes is not whole sectors`);
    this.check('write', lba, data.length / SECTOR);
    if (this.readOnly) throw new BackendError(this.name, `write at LBA ${lba}: image opened read-only`);
    const p = this.pwrite(lba, data);
    this.inflightWrites.add(p);
    try {
      await p;
    } finally {
      this.inflightWrites.delete(p);
    }
    if (fua) await this.flush();
  }

  private async pwrite(lba: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      try {
        const { bytesWritten } = await this.fh.write(data, done, data.length - done, lba * SECTOR + done);
        done += bytesWritten;
      } catch (e) {
        throw new BackendError(this.name, `write at LBA ${lba} (${data.length / SECTOR} sectors): ${(e as Error).message}`);
      }
    }
  }

  async flush(): Promise<void> {
    if (this.closed) throw new BackendError(this.name, 'flush after close');
    // Writes issued before this flush are covered: wait for them to reach the page cache first.
    await Promise.allSettled([...this.inflightWrites]);
    if (this.syncError) throw new BackendError(this.name, `flush refused: an earlier fdatasync failed (${this.syncError.message})`);
    if (this.readOnly) return;
    try {
      await this.syncFn(this.fh);
    } catch (e) {
      this.syncError = e instanceof Error ? e : new Error(String(e));
      throw new BackendError(this.name, `fdatasync failed: ${this.syncError.message}`);
    }
  }

  async trim(lba: number, count: number): Promise<void> {
    this.check('trim', lba, count);
    throw new BackendError(this.name, 'trim is not supported by the file backend');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inflightWrites]);
    await this.fh.close();
  }
}

/** Convenience: `openFileBackend('/tmp/disk.img', { createSectors: 2048 })`. */
export function openFileBackend(path: string, options: FileBackendOptions = {}): Promise<FileBackend> {
  return FileBackend.open(path, options);
}
