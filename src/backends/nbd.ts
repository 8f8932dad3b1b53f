// NBD client backend: fixed newstyle handshake with NBD_OPT_GO (falls back to
// NBD_OPT_EXPORT_NAME), then pipelined READ/WRITE/FLUSH/TRIM with simple replies, matched
// by cookie. Honours the export's transmission flags. A dropped connection fails every
// pending and later request with a BackendError.

import { connect, type Socket } from 'node:net';
import { BackendError, SECTOR, type BlockBackend } from './block.ts';
import * as P from './nbd/protocol.ts';
import { SocketReader } from './nbd/reader.ts';

export interface NbdOptions {
  /** Unix socket path (`nbdkit -U PATH`), or host + port for TCP. */
  socketPath?: string;
  host?: string;
  port?: number;
  /** Export name; "" is the server's default export. */
  exportName?: string;
  /** Connect + handshake deadline in ms (default 10 s): a silent server fails instead of hanging. */
  timeoutMs?: number;
}

/** Longest option reply payload we accept during the handshake (proto.md caps strings at 4 KiB). */
const MAX_OPTION_REPLY = 64 * 1024;

interface Pending {
  type: number;
  length: number;
  offset: number;
  resolve: (data: Buffer | null) => void;
  reject: (e: Error) => void;
}

interface ExportInfo {
  size: number;
  flags: number;
  maxPayload: number;
}

export class NbdBackend implements BlockBackend {
  readonly name: string;
  readonly sectors: number;
  readonly readOnly: boolean;
  readonly canTrim: boolean;
  /** Transmission flags as the server sent them (NBD_FLAG_*). */
  readonly flags: number;
  private readonly pending = new Map<bigint, Pending>();
  private readonly inflight = new Set<Promise<unknown>>();
  private nextCookie = 1n;
  private dead: Error | null = null;
  private flushError: Error | null = null;
  private closing = false;
  private readonly maxPayload: number;

  private constructor(
    private readonly sock: Socket,
    private readonly reader: SocketReader,
    name: string,
    info: ExportInfo,
  ) {
    this.name = name;
    this.sectors = Math.floor(info.size / SECTOR);
    this.flags = info.flags;
    this.readOnly = (info.flags & P.NBD_FLAG_READ_ONLY) !== 0;
    this.canTrim = (info.flags & P.NBD_FLAG_SEND_TRIM) !== 0 && !this.readOnly;
    // Whole sectors per request, within the server's maximum.
    this.maxPayload = Math.max(SECTOR, Math.floor(Math.min(info.maxPayload, P.NBD_DEFAULT_MAX_PAYLOAD) / SECTOR) * SECTOR);
    sock.on('close', () => this.fail(new BackendError(this.name, 'connection to the NBD server closed')));
    sock.on('error', (e) => this.fail(new BackendError(this.name, `connection error: ${e.message}`)));
    void this.replyLoop();
  }

  static async connect(options: NbdOptions): Promise<NbdBackend> {
    const where = options.socketPath ? `unix:${options.socketPath}` : `tcp:${options.host ?? 'localhost'}:${options.port ?? 10809}`;
    const exportName = options.exportName ?? '';
    const name = `nbd:${where}${exportName ? `/${exportName}` : ''}`;
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = options.socketPath ? connect(options.socketPath) : connect(options.port ?? 10809, options.host ?? 'localhost');
      s.once('connect', () => resolve(s));
      s.once('error', (e) => reject(new BackendError(name, `cannot connect: ${e.message}`)));
    });
    sock.setNoDelay?.(true);
    const reader = new SocketReader(sock, () => where);
    const timeoutMs = options.timeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BackendError(name, `no handshake within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const info = await Promise.race([handshake(sock, reader, exportName, name), deadline]);
      return new NbdBackend(sock, reader, name, info);
    } catch (e) {
      sock.destroy();
      if (e instanceof BackendError) throw e;
      throw new BackendError(name, `handshake failed: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- transmission -------------------------------------------------------------------

  private send(type: number, offset: number, length: number, flags = 0, payload?: Uint8Array): Promise<Buffer | null> {
    if (this.dead) return Promise.reject(this.dead);
    const cookie = this.nextCookie++;
    const head = Buffer.alloc(28);
    head.writeUInt32BE(P.NBD_REQUEST_MAGIC, 0);
    head.writeUInt16BE(flags, 4);
    head.writeUInt16BE(type, 6);
    head.writeBigUInt64BE(cookie, 8);
    head.writeBigUInt64BE(BigInt(offset), 16);
    head.writeUInt32BE(length, 24);
    const p = new Promise<Buffer | null>((resolve, reject) => {
      this.pending.set(cookie, { type, length, offset, resolve, reject });
      this.sock.write(payload ? Buffer.concat([head, payload]) : head);
    });
    const settled: Promise<unknown> = p.then(
      (): boolean => this.inflight.delete(settled),
      (): boolean => this.inflight.delete(settled),
    );
    this.inflight.add(settled);
    return p;
  }

  private async replyLoop(): Promise<void> {
    try {
      for (;;) {
        const h = await this.reader.read(16);
        const magic = h.readUInt32BE(0);
        if (magic !== P.NBD_SIMPLE_REPLY_MAGIC) {
          throw new BackendError(this.name, `unexpected reply magic 0x${magic.toString(16)} (structured replies were not negotiated)`);
        }
        const error = h.readUInt32BE(4);
        const cookie = h.readBigUInt64BE(8);
        const req = this.pending.get(cookie);
        if (!req) throw new BackendError(this.name, `reply for unknown cookie ${cookie}`);
        this.pending.delete(cookie);
        if (error !== 0) {
          const what = P.NBD_ERROR_NAMES[error] ?? `error ${error}`;
          req.reject(new BackendError(this.name, `${P.CMD_NAMES[req.type] ?? req.type} of ${req.length} bytes at offset ${req.offset}: server replied ${what}`));
          continue;
        }
        req.resolve(req.type === P.NBD_CMD_READ ? await this.reader.read(req.length) : null);
      }
    } catch (e) {
      this.fail(e instanceof BackendError ? e : new BackendError(this.name, `connection lost: ${(e as Error).message}`));
      this.sock.destroy();
    }
  }

  private fail(e: BackendError): void {
    if (!this.dead) this.dead = this.closing ? new BackendError(this.name, 'backend closed') : e;
    for (const p of this.pending.values()) p.reject(this.dead);
    this.pending.clear();
  }

  private range(op: string, lba: number, count: number): void {
    if (this.dead) throw this.dead;
    if (!Number.isSafeInteger(lba) || !Number.isSafeInteger(count) || lba < 0 || count < 0 || lba + count > this.sectors) {
      throw new BackendError(this.name, `${op} of ${count} sectors at LBA ${lba} is outside the export (${this.sectors} sectors)`);
    }
  }

  async read(lba: number, count: number): Promise<Uint8Array> {
    this.range('read', lba, count);
    const total = count * SECTOR;
    const parts: Array<Promise<Buffer | null>> = [];
    for (let off = 0; off < total; off += this.maxPayload) {
      parts.push(this.send(P.NBD_CMD_READ, lba * SECTOR + off, Math.min(this.maxPayload, total - off)));
    }
    const bufs = (await Promise.all(parts)) as Buffer[]; // READ replies always carry data
    const out = bufs.length === 1 ? bufs[0] : Buffer.concat(bufs);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }

  async write(lba: number, data: Uint8Array, fua = false): Promise<void> {
    if (data.length % SECTOR !== 0) throw new BackendError(this.name, `write of ${data.length} bytes is not whole sectors`);
    this.range('write', lba, data.length / SECTOR);
    if (this.readOnly) throw new BackendError(this.name, `write at LBA ${lba}: the export is read-only`);
    const nativeFua = fua && (this.flags & P.NBD_FLAG_SEND_FUA) !== 0;
    const parts: Array<Promise<unknown>> = [];
    for (let off = 0; off < data.length; off += this.maxPayload) {
      const piece = data.subarray(off, Math.min(data.length, off + this.maxPayload));
      parts.push(this.send(P.NBD_CMD_WRITE, lba * SECTOR + off, piece.length, nativeFua ? P.NBD_CMD_FLAG_FUA : 0, piece));
    }
    await Promise.all(parts);
    if (fua && !nativeFua) await this.flush(); // no FUA on this export: a flush gives the same guarantee
  }

  async flush(): Promise<void> {
    if (this.dead) throw this.dead;
    if (this.flushError) throw new BackendError(this.name, `flush refused: an earlier flush failed (${this.flushError.message})`);
    // Without SEND_FLUSH the server has no volatile cache to flush (proto.md): nothing to send.
    if (!(this.flags & P.NBD_FLAG_SEND_FLUSH) || this.readOnly) return;
    try {
      await this.send(P.NBD_CMD_FLUSH, 0, 0);
    } catch (e) {
      if (!this.dead) this.flushError = e as Error; // a server-side flush error is sticky
      throw e;
    }
  }

  async trim(lba: number, count: number): Promise<void> {
    this.range('trim', lba, count);
    if (!this.canTrim) throw new BackendError(this.name, 'trim: the export does not accept NBD_CMD_TRIM');
    const total = count * SECTOR;
    const parts: Array<Promise<unknown>> = [];
    // TRIM carries no payload but its length is a u32: split at 2 GiB.
    for (let off = 0; off < total; off += 0x8000_0000) {
      parts.push(this.send(P.NBD_CMD_TRIM, lba * SECTOR + off, Math.min(0x8000_0000, total - off)));
    }
    await Promise.all(parts);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (!this.dead) {
      // Let outstanding replies arrive, then say goodbye (NBD_CMD_DISC has no reply).
      await Promise.allSettled([...this.inflight]);
      const head = Buffer.alloc(28);
      head.writeUInt32BE(P.NBD_REQUEST_MAGIC, 0);
      head.writeUInt16BE(P.NBD_CMD_DISC, 6);
      head.writeBigUInt64BE(this.nextCookie++, 8);
      await new Promise<void>((r) => this.sock.end(head, () => r()));
    }
    this.sock.destroy();
    this.fail(new BackendError(this.name, 'backend closed'));
  }
}

async function handshake(sock: Socket, reader: SocketReader, exportName: string, name: string): Promise<ExportInfo> {
  const greet = await reader.read(16);
  if (greet.readBigUInt64BE(0) !== P.NBDMAGIC) throw new BackendError(name, 'not an NBD server (no NBDMAGIC)');
  const version = greet.readBigUInt64BE(8);
  if (version === P.NBD_OLD_VERSION) throw new BackendError(name, 'server speaks oldstyle negotiation only');
  if (version !== P.IHAVEOPT) throw new BackendError(name, `unknown negotiation magic 0x${version.toString(16)}`);
  const gflags = (await reader.read(2)).readUInt16BE(0);
  if (!(gflags & P.NBD_FLAG_FIXED_NEWSTYLE)) throw new BackendError(name, 'server lacks fixed newstyle negotiation');
  const noZeroes = (gflags & P.NBD_FLAG_NO_ZEROES) !== 0;
  const cflags = Buffer.alloc(4);
  cflags.writeUInt32BE(P.NBD_FLAG_C_FIXED_NEWSTYLE | (noZeroes ? P.NBD_FLAG_C_NO_ZEROES : 0));
  sock.write(cflags);

  const nameBytes = Buffer.from(exportName, 'utf8');
  const goData = Buffer.alloc(4 + nameBytes.length + 2 + 2);
  goData.writeUInt32BE(nameBytes.length, 0);
  nameBytes.copy(goData, 4);
  goData.writeUInt16BE(1, 4 + nameBytes.length); // one information request:
  goData.writeUInt16BE(P.NBD_INFO_BLOCK_SIZE, 6 + nameBytes.length);
  sock.write(option(P.NBD_OPT_GO, goData));

  let size = -1;
  let flags = 0;
  let maxPayload = P.NBD_DEFAULT_MAX_PAYLOAD;
  for (;;) {
    const h = await reader.read(20);
    if (h.readBigUInt64BE(0) !== P.NBD_REP_MAGIC) throw new BackendError(name, 'bad option reply magic');
    const type = h.readUInt32BE(12);
    const len = h.readUInt32BE(16);
    if (len > MAX_OPTION_REPLY) throw new BackendError(name, `option reply of ${len} bytes is too long`);
    const data = len > 0 ? await reader.read(len) : Buffer.alloc(0);
    if (type === P.NBD_REP_INFO && len >= 2) {
      const info = data.readUInt16BE(0);
      if (info === P.NBD_INFO_EXPORT && len >= 12) {
        size = Number(data.readBigUInt64BE(2));
        flags = data.readUInt16BE(10);
      } else if (info === P.NBD_INFO_BLOCK_SIZE && len >= 14) {
        const minimum = data.readUInt32BE(2);
        // Disk I/O comes in whole 512-byte sectors: an export demanding larger alignment cannot serve it.
        if (minimum > SECTOR) throw new BackendError(name, `export needs ${minimum}-byte aligned requests; sectors are ${SECTOR} bytes`);
        maxPayload = data.readUInt32BE(10);
      }
    } else if (type === P.NBD_REP_ACK) {
      if (size < 0) throw new BackendError(name, 'NBD_OPT_GO acknowledged without NBD_INFO_EXPORT');
      return { size, flags, maxPayload };
    } else if (type === P.NBD_REP_ERR_UNSUP) {
      return exportNameFallback(sock, reader, nameBytes, noZeroes, name);
    } else if (type & P.NBD_REP_FLAG_ERROR) {
      const what = P.REP_ERROR_NAMES[type] ?? `error 0x${type.toString(16)}`;
      throw new BackendError(name, `export "${exportName}" refused: ${what}${len ? `: ${data.toString('utf8')}` : ''}`);
    }
    // Other replies (e.g. NBD_INFO_NAME) are ignored.
  }
}

/** Servers without NBD_OPT_GO: NBD_OPT_EXPORT_NAME answers with size and flags directly. */
async function exportNameFallback(sock: Socket, reader: SocketReader, nameBytes: Buffer, noZeroes: boolean, name: string): Promise<ExportInfo> {
  sock.write(option(P.NBD_OPT_EXPORT_NAME, nameBytes));
  const r = await reader.read(10 + (noZeroes ? 0 : 124));
  return { size: Number(r.readBigUInt64BE(0)), flags: r.readUInt16BE(8), maxPayload: P.NBD_DEFAULT_MAX_PAYLOAD };
}

function option(opt: number, data: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeBigUInt64BE(P.IHAVEOPT, 0);
  h.writeUInt32BE(opt, 8);
  h.writeUInt32BE(data.length, 12);
  return Buffer.concat([h, data]);
}

/** `openNbdBackend({ socketPath: '/run/nbd.sock' })` or `{ host, port, exportName }`. */
export function openNbdBackend(options: NbdOptions): Promise<NbdBackend> {
  return NbdBackend.connect(options);
}
