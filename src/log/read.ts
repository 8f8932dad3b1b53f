// Reads an access log back: JSON lines or a msgpack stream (by extension, as written), as
// records with their bytes as Uint8Array. A line that is not a record is an error naming the
// file and line.

import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { UnpackrStream } from 'msgpackr';
import { LOG_VERSION, type DataDigest, type LogRecord } from './record.ts';
import { formatOf } from './writer.ts';

export class LogReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LogReadError';
  }
}

function bytesOf(d: DataDigest | undefined): void {
  if (d && typeof d.bytes === 'string') d.bytes = Buffer.from(d.bytes as unknown as string, 'base64');
}

function check(rec: unknown, where: string): LogRecord {
  const r = rec as LogRecord;
  if (typeof r !== 'object' || r === null || !['header', 'access', 'event', 'end'].includes((r as { type?: string }).type ?? ''))
    throw new LogReadError(`${where}: not an access log record (expected an object with type header|access|event|end)`);
  if (r.type === 'header' && r.version > LOG_VERSION) throw new LogReadError(`${where}: log format version ${r.version} is newer than this muxvisor reads (${LOG_VERSION})`);
  if (r.type === 'access') {
    bytesOf(r.data);
    bytesOf(r.answerData);
  }
  if (r.type === 'event') bytesOf(r.dma);
  return r;
}

/** The records of a log, in file order. */
export async function* readLog(path: string): AsyncGenerator<LogRecord> {
  if (!existsSync(path)) throw new LogReadError(`${path}: no such file`);
  const format = formatOf(path);
  if (format === 'json') {
    const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
    let n = 0;
    for await (const line of lines) {
      n++;
      if (line.trim() === '') continue;
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch (e) {
        throw new LogReadError(`${path}:${n}: not JSON (${(e as Error).message})`);
      }
      yield check(obj, `${path}:${n}`);
    }
    return;
  }
  const stream = createReadStream(path).pipe(new UnpackrStream({ useRecords: false }));
  let n = 0;
  for await (const obj of stream) yield check(obj, `${path}: record ${++n}`);
}

export async function readAll(path: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of readLog(path)) out.push(r);
  return out;
}
