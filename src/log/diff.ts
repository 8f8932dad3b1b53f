// `log diff A B`: two runs of the same driver, aligned per guest on their register sequence.
// Each access becomes a key (device, register, direction, width, count, value written or
// answer read, or the data's CRC); a run of the same read with the same answer (a status
// poll) folds into one step, so a driver that polled BSY three times in one run and five in
// the other does not diverge. Times, stalls and chart states are not compared.

import type { AccessRecord, LogRecord } from './record.ts';

export interface Step {
  key: string;
  rec: AccessRecord;
  /** Record number in its file (1-based: the line of a .jsonl log). */
  line: number;
  /** Identical reads folded into this step. */
  repeat: number;
}

export interface GuestDiff {
  guestA: string;
  guestB: string;
  stepsA: number;
  stepsB: number;
  /** Absent when the sequences are equal. */
  divergence?: {
    /** Index of the first differing step. */
    index: number;
    a?: Step;
    b?: Step;
    /** The steps before it (equal in both), oldest first. */
    before: Step[];
    /** The steps after it in each run. */
    afterA: Step[];
    afterB: Step[];
  };
}

export interface DiffResult {
  guests: GuestDiff[];
  onlyInA: string[];
  onlyInB: string[];
}

export function accessKey(a: AccessRecord): string {
  const what = a.dir === 'w' ? (a.data ? `crc ${a.data.crc}` : String(a.value)) : a.answerData ? `crc ${a.answerData.crc}` : String(a.answer);
  return `${a.device}|${a.reg ?? `${a.space}:${a.addr}`}|${a.dir}|${a.size}x${a.count}|${what}${a.error ? '|error' : ''}`;
}

/** A guest's register sequence, identical consecutive reads folded. */
export function stepsOf(records: LogRecord[], guest: string): Step[] {
  const out: Step[] = [];
  records.forEach((r, i) => {
    if (r.type !== 'access' || r.guest !== guest) return;
    const key = accessKey(r);
    const last = out.at(-1);
    if (last && last.key === key && r.dir === 'r') last.repeat++;
    else out.push({ key, rec: r, line: i + 1, repeat: 1 });
  });
  return out;
}

function guestsOf(records: LogRecord[]): string[] {
  const seen = new Set<string>();
  for (const r of records) if (r.type === 'access') seen.add(r.guest);
  return [...seen];
}

export function diffGuest(a: Step[], b: Step[], guestA: string, guestB: string, context: number): GuestDiff {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i].key === b[i].key) i++;
  const res: GuestDiff = { guestA, guestB, stepsA: a.length, stepsB: b.length };
  if (i === a.length && i === b.length) return res;
  res.divergence = { index: i, a: a[i], b: b[i], before: a.slice(Math.max(0, i - context), i), afterA: a.slice(i + 1, i + 1 + Math.min(context, 3)), afterB: b.slice(i + 1, i + 1 + Math.min(context, 3)) };
  return res;
}

/**
 * Compare two logs guest by guest (the guests both have; with one guest each under different
 * names, those two), or only `guests`.
 */
export function diffLogs(a: LogRecord[], b: LogRecord[], opts: { guests?: string[]; context?: number } = {}): DiffResult {
  const context = opts.context ?? 5;
  const ga = guestsOf(a);
  const gb = guestsOf(b);
  let pairs: Array<[string, string]>;
  if (opts.guests?.length) {
    for (const g of opts.guests) {
      if (!ga.includes(g)) throw new Error(`guest ${g} has no accesses in the first log (it has: ${ga.join(', ') || 'none'})`);
      if (!gb.includes(g)) throw new Error(`guest ${g} has no accesses in the second log (it has: ${gb.join(', ') || 'none'})`);
    }
    pairs = opts.guests.map((g) => [g, g]);
  } else {
    const common = ga.filter((g) => gb.includes(g));
    pairs = common.length === 0 && ga.length === 1 && gb.length === 1 ? [[ga[0], gb[0]]] : common.map((g) => [g, g]);
  }
  const paired = new Set(pairs.flat());
  return {
    guests: pairs.map(([x, y]) => diffGuest(stepsOf(a, x), stepsOf(b, y), x, y, context)),
    onlyInA: opts.guests?.length ? [] : ga.filter((g) => !paired.has(g)),
    onlyInB: opts.guests?.length ? [] : gb.filter((g) => !paired.has(g)),
  };
}
