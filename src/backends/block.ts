// The block backend contract: the host resource behind a disk model (image file, NBD export).

export const SECTOR = 512;

export class BackendError extends Error {
  constructor(
    readonly backend: string,
    message: string,
  ) {
    super(`${backend}: ${message}`);
    this.name = 'BackendError';
  }
}

export interface BlockBackend {
  /** Human name for logs and errors (`file:/tmp/disk.img`, `nbd:unix:/run/x.sock`). */
  readonly name: string;
  /** Capacity in 512-byte sectors. */
  readonly sectors: number;
  readonly readOnly: boolean;
  /** True when the backend can discard (TRIM). */
  readonly canTrim: boolean;
  read(lba: number, count: number): Promise<Uint8Array>;
  /** Resolves when the data reached the backend; with `fua`, when it is durable. */
  write(lba: number, data: Uint8Array, fua?: boolean): Promise<void>;
  /** Resolves only once everything written before it is durable; rejects (and keeps rejecting) after a sync failure. */
  flush(): Promise<void>;
  trim(lba: number, count: number): Promise<void>;
  close(): Promise<void>;
}
