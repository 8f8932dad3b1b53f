// In-RAM block backend for tests and benchmarks. Everything is "durable" at once; failures
// can be injected to exercise the device's error paths.

import { BackendError, SECTOR, type BlockBackend } from './block.ts';

export interface MemoryBackendOptions {
  readOnly?: boolean;
  canTrim?: boolean;
  /** Initial content (copied); its length must be a whole number of sectors. */
  data?: Uint8Array;
}

/** Which operations fail on purpose (tests of the device's error handling). */
export interface FailureInjection {
  read?: boolean;
  write?: boolean;
  flush?: boolean;
}

export class MemoryBackend implements BlockBackend {
  readonly name: string;
  readonly sectors: number;
  readonly readOnly: boolean;
  readonly canTrim: boolean;
  readonly data: Uint8Array;
  fail: FailureInjection = {};
  /** Counters for tests: calls seen and writes that asked for FUA. */
  readonly calls = { read: 0, write: 0, fuaWrites: 0, flush: 0, trim: 0 };
  private closed = false;

  constructor(sectors: number, options: MemoryBackendOptions = {}) {
    if (!Number.isSafeInteger(sectors) || sectors <= 0) throw new BackendError('memory', `bad size ${sectors} sectors`);
    this.name = `memory:${sectors}`;
    this.sectors = sectors;
    this.readOnly = options.readOnly ?? false;
    this.canTrim = options.canTrim ?? true;
    this.data = new Uint8Array(sectors * SECTOR);
    if (options.data) {
      if (options.data.length > this.data.length) throw new BackendError(this.name, 'initial data larger than the disk');
      this.data.set(options.data);
    }
  }

  private check(op: string, lba: number, count: number): void {
    if (this.closed) throw new BackendError(this.name, `${op} after close`);
    if (!Number.isSafeInteger(lba) || !Number.isSafeInteger(count) || lba < 0 || count < 0 || lba + count > this.sectors) {
      throw new BackendError(this.name, `${op} of ${count} sectors at LBA ${lba} is outside the disk (${this.sectors} sectors)`);
    }
  }

  async read(lba: number, count: number): Promise<Uint8Array> {
    this.calls.read++;
    this.check('read', lba, count);
    if (this.fail.read) throw new BackendError(this.name, `injected read failure at LBA ${lba}`);
    return this.data.slice(lba * SECTOR, (lba + count) * SECTOR);
  }

  async write(lba: number, data: Uint8Array, fua = false): Promise<void> {
    this.calls.write++;
    if (fua) this.calls.fuaWrites++;
    if (data.length % SECTOR !== 0) throw new BackendError(this.name, `write of ${data.length} bytes is not whole sectors`);
    this.check('write', lba, data.length / SECTOR);
    if (this.readOnly) throw new BackendError(this.name, 'write to a read-only disk');
    if (this.fail.write) throw new BackendError(this.name, `injected write failure at LBA ${lba}`);
    this.data.set(data, lba * SECTOR);
  }

  async flush(): Promise<void> {
    this.calls.flush++;
    if (this.closed) throw new BackendError(this.name, 'flush after close');
    if (this.fail.flush) throw new BackendError(this.name, 'injected flush failure');
  }

  async trim(lba: number, count: number): Promise<void> {
    this.calls.trim++;
    this.check('trim', lba, count);
    if (this.readOnly) throw new BackendError(this.name, 'trim on a read-only disk');
    this.data.fill(0, lba * SECTOR, (lba + count) * SECTOR);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
