// What the HTML report shows, computed from an access log's records (src/log/record.ts): per
// device who owned it when (from the MUX's switch and release events), the chart's unsafe spans
// (from each access's chart state after it), each guest's waits (stalled accesses), switches,
// resets, faults and IRQs; per guest its share of the device and its wait-time distribution;
// the slowest accesses; and the accesses of each ownership span, for the click on a span.

import type { AccessRecord, EventRecord, HeaderRecord, LogRecord } from '../log/record.ts';
import type { SafeOf } from './safe-states.ts';

/** One access as the report lists it: [t ns, guest, register, dir, size, count, value or answer, ns, stall ns, chart after]. */
export type AccessRow = [number, string, string, 'r' | 'w', number, number, string, number, number, string];

export interface GuestShare {
  guest: string;
  ownedNs: number;
  /** ownedNs over all guests' owned time on this device. */
  share: number;
  accesses: number;
  stalled: number;
  waitNs: number;
  /** Largest single wait, ns. */
  maxWaitNs: number;
}

export interface DeviceReport {
  id: string;
  kind: string;
  machine: string | null;
  switches: number;
  unsafeSwitches: number;
  resets: number;
  faults: number;
  irqs: number;
  accesses: number;
  /** Ownership: [start ns, end ns, guest index]. */
  spans: [number, number, number][];
  /** The chart out of its safe states: [start ns, end ns]. */
  unsafe: [number, number][];
  /** A guest waiting for the device: [start ns, end ns, guest index] (overlapping stalls merged). */
  waits: [number, number, number][];
  /** Point events: [t ns, guest index or -1]. */
  marks: { switch: [number, number][]; reset: [number, number][]; fault: [number, number][]; irq: [number, number][] };
  shares: GuestShare[];
  /** Wait-time histogram: WAIT_BUCKETS labels, counts[guest][bucket] of stalled accesses. */
  waitHistogram: number[][];
  slowest: AccessRow[];
  /** Accesses of each span (same index as `spans`), at most SPAN_ACCESS_CAP each; `spanTotals` the real counts. */
  spanAccesses: AccessRow[][];
  spanTotals: number[];
}

export interface ReportData {
  source: string;
  tool: string;
  started: string;
  durationNs: number;
  accesses: number;
  events: number;
  guests: string[];
  devices: DeviceReport[];
}

export const WAIT_BUCKETS = ['< 10 µs', '10-100 µs', '0.1-1 ms', '1-10 ms', '10-100 ms', '≥ 100 ms'];
const BUCKET_BOUNDS_NS = [10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];
/** Accesses embedded per span, and in all: a long log's report stays a file a browser opens. */
export const SPAN_ACCESS_CAP = 400;
export const TOTAL_ACCESS_CAP = 60_000;
const SLOWEST = 25;

function bucketOf(ns: number): number {
  const i = BUCKET_BOUNDS_NS.findIndex((b) => ns < b);
  return i < 0 ? BUCKET_BOUNDS_NS.length : i;
}

const hexOf = (v: number | string | undefined): string => (v === undefined ? '' : typeof v === 'string' ? v : '0x' + v.toString(16));

function row(a: AccessRecord): AccessRow {
  let shown = '';
  if (a.dir === 'w') shown = a.data ? `${a.data.len} bytes crc ${a.data.crc}` : hexOf(a.value);
  else shown = a.answerData ? `${a.answerData.len} bytes crc ${a.answerData.crc}` : hexOf(a.answer);
  if (a.error) shown = `${shown} (${a.error})`.trim();
  return [a.t, a.guest, a.reg ?? hexOf(a.addr), a.dir, a.size, a.count, shown, a.ns, a.stallNs, a.after ?? ''];
}

/** When the device started serving an access: its arrival plus how long it waited. */
const servedAt = (a: AccessRecord): number => a.t + a.stallNs;

/** The first index in `xs` (sorted by servedAt) served at or after `t`. */
function lowerBound(xs: readonly AccessRecord[], t: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (servedAt(xs[mid]) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function deviceReport(
  dev: HeaderRecord['devices'][number],
  guests: string[],
  accesses: AccessRecord[],
  events: EventRecord[],
  endT: number,
  safeOf: SafeOf,
  budget: { left: number },
): DeviceReport {
  const gi = (g: string | undefined): number => (g === undefined ? -1 : guests.indexOf(g));
  const marks: DeviceReport['marks'] = { switch: [], reset: [], fault: [], irq: [] };
  const spans: [number, number, number][] = [];
  let open: { start: number; g: number } | null = null;
  const close = (t: number): void => {
    if (open) spans.push([open.start, Math.max(open.start, t), open.g]);
    open = null;
  };
  let unsafeSwitches = 0;
  for (const e of events) {
    if (e.kind === 'switch') {
      close(e.t);
      open = { start: e.t, g: gi(e.guest) };
      marks.switch.push([e.t, gi(e.guest)]);
    } else if (e.kind === 'release' || e.kind === 'fault') {
      if (open && (e.guest === undefined || gi(e.guest) === open.g)) close(e.t);
      if (e.kind === 'fault') marks.fault.push([e.t, gi(e.guest)]);
    } else if (e.kind === 'reset') marks.reset.push([e.t, gi(e.guest)]);
    else if (e.kind === 'irq' && e.level !== false) marks.irq.push([e.t, gi(e.guest)]);
    else if (e.kind === 'unsafe-switch') unsafeSwitches++;
  }
  close(endT);

  // The chart's unsafe spans, from the state each access left it in, in the order the device
  // served them (a stalled access ran after accesses that arrived later).
  const unsafe: [number, number][] = [];
  let unsafeSince = -1;
  for (const a of [...accesses].sort((x, y) => servedAt(x) - servedAt(y))) {
    if (a.after === undefined) continue;
    const safe = safeOf(a.after);
    if (safe === false && unsafeSince < 0) unsafeSince = servedAt(a);
    else if (safe === true && unsafeSince >= 0) {
      unsafe.push([unsafeSince, a.t + a.ns]);
      unsafeSince = -1;
    }
  }
  if (unsafeSince >= 0) unsafe.push([unsafeSince, endT]);

  // Waits, merged per guest where stalls overlap (a string of polls stalled together).
  const waits: [number, number, number][] = [];
  const lastWait = new Map<number, [number, number, number]>();
  const shares = guests.map((guest): GuestShare => ({ guest, ownedNs: 0, share: 0, accesses: 0, stalled: 0, waitNs: 0, maxWaitNs: 0 }));
  const waitHistogram = guests.map(() => WAIT_BUCKETS.map(() => 0));
  for (const a of accesses) {
    const g = gi(a.guest);
    if (g < 0) continue;
    shares[g].accesses++;
    if (a.stallNs <= 0) continue;
    shares[g].stalled++;
    shares[g].waitNs += a.stallNs;
    shares[g].maxWaitNs = Math.max(shares[g].maxWaitNs, a.stallNs);
    waitHistogram[g][bucketOf(a.stallNs)]++;
    const w = lastWait.get(g);
    if (w && a.t <= w[1]) w[1] = Math.max(w[1], a.t + a.stallNs);
    else {
      const n: [number, number, number] = [a.t, a.t + a.stallNs, g];
      waits.push(n);
      lastWait.set(g, n);
    }
  }
  for (const [s, e, g] of spans) if (g >= 0) shares[g].ownedNs += e - s;
  const owned = shares.reduce((x, s) => x + s.ownedNs, 0);
  for (const s of shares) s.share = owned > 0 ? s.ownedNs / owned : 0;

  // Each span's accesses: the owner's that the device served (arrival + wait) within it.
  const byGuest = new Map<number, AccessRecord[]>();
  for (const a of accesses) {
    const g = gi(a.guest);
    if (!byGuest.has(g)) byGuest.set(g, []);
    byGuest.get(g)!.push(a); // set just above
  }
  for (const xs of byGuest.values()) xs.sort((a, b) => servedAt(a) - servedAt(b));
  const spanAccesses: AccessRow[][] = [];
  const spanTotals: number[] = [];
  for (const [s, e, g] of spans) {
    const xs = byGuest.get(g) ?? [];
    let from = lowerBound(xs, s);
    // An access that found the device free was granted it while being served: it started just
    // before the span's switch event and ended after it.
    while (from > 0 && xs[from - 1].t + xs[from - 1].ns >= s) from--;
    const to = lowerBound(xs, e + 1);
    spanTotals.push(to - from);
    const take = Math.max(0, Math.min(to - from, SPAN_ACCESS_CAP, budget.left));
    budget.left -= take;
    spanAccesses.push(xs.slice(from, from + take).map(row));
  }

  const slowest = [...accesses].sort((a, b) => b.ns - a.ns).slice(0, SLOWEST).map(row);
  return {
    id: dev.id,
    kind: dev.kind,
    machine: dev.machine,
    switches: marks.switch.length,
    unsafeSwitches,
    resets: marks.reset.length,
    faults: marks.fault.length,
    irqs: marks.irq.length,
    accesses: accesses.length,
    spans,
    unsafe,
    waits,
    marks,
    shares,
    waitHistogram,
    slowest,
    spanAccesses,
    spanTotals,
  };
}

/** The report of a log's records; `safeOf(machine)` says which chart states are safe. */
export async function buildReport(source: string, records: readonly LogRecord[], safeOf: (machine: string | null, events: EventRecord[]) => Promise<SafeOf>): Promise<ReportData> {
  const header = records.find((r): r is HeaderRecord => r.type === 'header');
  if (!header) throw new Error(`${source}: no header record: not an access log`);
  const accesses = records.filter((r): r is AccessRecord => r.type === 'access').sort((a, b) => a.t - b.t);
  const events = records.filter((r): r is EventRecord => r.type === 'event').sort((a, b) => a.t - b.t);
  const last = records.reduce((t, r) => (r.type === 'header' ? t : Math.max(t, r.t + (r.type === 'access' ? r.ns : 0))), 0);
  const guests = header.guests.map((g) => g.name);
  for (const a of accesses) if (!guests.includes(a.guest)) guests.push(a.guest); // a guest the header did not list
  const budget = { left: TOTAL_ACCESS_CAP };
  const devices: DeviceReport[] = [];
  for (const d of header.devices) {
    const evs = events.filter((e) => e.device === d.id);
    devices.push(deviceReport(d, guests, accesses.filter((a) => a.device === d.id), evs, last, await safeOf(d.machine, evs), budget));
  }
  return { source, tool: header.tool, started: header.started, durationNs: last, accesses: accesses.length, events: events.length, guests, devices };
}
