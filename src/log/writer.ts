// Writes log records to a file, asynchronously and in batches: JSON lines (.jsonl, .json) or a
// msgpack stream (.mpk), by the file's extension. Memory is bounded: records gather into a
// batch of up to BATCH_BYTES, each batch goes to its own place in the file with an async
// write, and when MAX_QUEUED_BYTES are in flight (the disk is slower than the guests) the
// writer blocks: the next batch is written synchronously before the access that filled it
// returns. Nothing is dropped; `blocked` counts those stalls.

import { closeSync, openSync, write, writeSync } from 'node:fs';
import { extname } from 'node:path';
import { Packr } from 'msgpackr';
import type { AccessRecord, DataDigest, LogRecord } from './record.ts';

export type LogFormat = 'json' | 'msgpack';

const BATCH_BYTES = 64 * 1024;
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/** The format a file name asks for; an unknown extension is an error naming it. */
export function formatOf(path: string): LogFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.jsonl' || ext === '.json') return 'json';
  if (ext === '.mpk' || ext === '.msgpack') return 'msgpack';
  throw new Error(`access log ${path}: unknown extension "${ext}" (use .jsonl or .json for JSON lines, .mpk for msgpack)`);
}

/** JSON has no bytes: data kept in full goes as base64. */
function jsonDigest(d: DataDigest): unknown {
  return d.bytes ? { ...d, bytes: Buffer.from(d.bytes.buffer, d.bytes.byteOffset, d.bytes.byteLength).toString('base64') } : d;
}

/** Quoted JSON strings of the few names that repeat on every line (guests, devices, registers, states). */
const quoted = new Map<string, string>();
function q(s: string): string {
  let v = quoted.get(s);
  if (v === undefined) {
    v = JSON.stringify(s);
    if (quoted.size < 4096) quoted.set(s, v);
  }
  return v;
}

const digestJson = (d: DataDigest): string =>
  `{"len":${d.len},"crc":"${d.crc}"${d.bytes ? `,"bytes":"${Buffer.from(d.bytes.buffer, d.bytes.byteOffset, d.bytes.byteLength).toString('base64')}"` : ''}}`;
const valueJson = (v: number | string): string => (typeof v === 'number' ? String(v) : JSON.stringify(v));

/** The hot record by hand, in the schema's field order: JSON.stringify of it was the log's largest cost. */
function accessJson(r: AccessRecord): string {
  let s = `{"type":"access","t":${r.t},"guest":${q(r.guest)},"device":${r.device === null ? 'null' : q(r.device)},"space":"${r.space}","addr":${r.addr},"reg":${r.reg === null ? 'null' : q(r.reg)},"dir":"${r.dir}","size":${r.size},"count":${r.count}`;
  if (r.value !== undefined) s += `,"value":${valueJson(r.value)}`;
  if (r.data) s += `,"data":${digestJson(r.data)}`;
  if (r.answer !== undefined) s += `,"answer":${valueJson(r.answer)}`;
  if (r.answerData) s += `,"answerData":${digestJson(r.answerData)}`;
  if (r.error !== undefined) s += `,"error":${JSON.stringify(r.error)}`;
  if (r.before !== undefined) s += `,"before":${q(r.before)}`;
  if (r.after !== undefined) s += `,"after":${q(r.after)}`;
  if (r.owner !== undefined) s += `,"owner":${q(r.owner)}`;
  return s + `,"stallNs":${r.stallNs},"ns":${r.ns}}\n`;
}

function jsonLine(rec: LogRecord): string {
  if (rec.type === 'access') return accessJson(rec);
  if (rec.type === 'event' && rec.dma?.bytes) return JSON.stringify({ ...rec, dma: jsonDigest(rec.dma) }) + '\n';
  return JSON.stringify(rec) + '\n';
}

export class LogWriter {
  readonly format: LogFormat;
  /** Times the writes in flight passed their bound and the writer blocked (wrote synchronously). */
  blocked = 0;
  private readonly fd: number;
  private readonly packr = new Packr({ useRecords: false });
  private batch: Array<string | Uint8Array> = [];
  private batchBytes = 0;
  /** Each batch has its own place in the file, so writes in flight may finish in any order. */
  private position = 0;
  private inflight = 0;
  private inflightBytes = 0;
  private failure: Error | null = null;
  private idle: Array<() => void> = [];
  private closed = false;

  constructor(readonly path: string) {
    this.format = formatOf(path);
    try {
      this.fd = openSync(path, 'w');
    } catch (e) {
      throw new Error(`access log ${path}: cannot open it for writing (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }

  write(rec: LogRecord): void {
    if (this.closed) return;
    const chunk = this.format === 'json' ? jsonLine(rec) : this.packr.pack(rec);
    this.batch.push(chunk);
    this.batchBytes += chunk.length;
    if (this.batchBytes >= BATCH_BYTES) this.flush();
  }

  /** Hand the current batch to the disk. */
  flush(): void {
    if (this.batch.length === 0) return;
    const buf = this.format === 'json' ? Buffer.from((this.batch as string[]).join(''), 'utf8') : Buffer.concat(this.batch as Uint8Array[]);
    this.batch = [];
    this.batchBytes = 0;
    const at = this.position;
    this.position += buf.length;
    if (this.inflightBytes + buf.length > MAX_QUEUED_BYTES) {
      // Backpressure: the guests wait while the disk catches up, rather than memory growing.
      this.blocked++;
      this.writeAllSync(buf, at);
      return;
    }
    this.inflight++;
    this.inflightBytes += buf.length;
    const put = (off: number): void =>
      write(this.fd, buf, off, buf.length - off, at + off, (err, n) => {
        if (!err && off + n < buf.length) return put(off + n);
        if (err) this.failure ??= new Error(`access log ${this.path}: write failed (${err.code ?? err.message})`);
        this.inflight--;
        this.inflightBytes -= buf.length;
        if (this.inflight === 0) for (const f of this.idle.splice(0)) f();
      });
    put(0);
  }

  private writeAllSync(buf: Buffer, at: number): void {
    try {
      let off = 0;
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off, at + off);
    } catch (e) {
      this.failure ??= new Error(`access log ${this.path}: write failed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }

  /** Write what is left and close the file. Throws the first write failure. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.inflight > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    closeSync(this.fd);
    if (this.failure) throw this.failure;
  }
}
