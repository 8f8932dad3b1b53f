// `log export --mmiotrace`: Linux's mmiotrace text format, version 20070824
// (Documentation/trace/mmiotrace.rst), so tools that read mmiotrace dumps read our logs:
//   VERSION 20070824
//   MAP <secs.usecs> <map id> <physical> <virtual> <length> <PC> <PID>
//   R|W <width> <secs.usecs> <map id> <physical> <value> <PC> <PID>
//   MARK <secs.usecs> <text>
// mmiotrace knows only MMIO. Port I/O goes the same way, its port number as the address in a
// MAP of the port region (a MARK at the top says so), unless `mmioOnly`. A string access
// writes one R/W per element when its data is in the log, else a MARK with its digest. MUX events (switch, IRQ, DMA, reset) become MARKs. PC and PID
// are 0, as mmiotrace writes them when it does not know them.

import type { HeaderRecord, LogRecord } from './record.ts';
import { eventLine } from './show.ts';

const stamp = (t: number): string => {
  const us = Math.floor(t / 1e3);
  return `${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}`;
};
const hx = (n: number | string): string => (typeof n === 'number' ? `0x${n.toString(16)}` : n);

interface MapEntry {
  id: number;
  space: string;
  start: number;
  end: number;
}

export class MmiotraceWriter {
  private readonly maps: MapEntry[] = [];
  private readonly announced = new Set<number>();

  constructor(
    private readonly out: (line: string) => void,
    private readonly opts: { mmioOnly?: boolean } = {},
  ) {
    out('VERSION 20070824');
  }

  header(h: HeaderRecord): void {
    for (const d of h.devices) for (const r of d.regions) this.maps.push({ id: this.maps.length + 1, space: r.space, start: r.start, end: r.end });
    // The PCI configuration mechanism #1 ports.
    this.maps.push({ id: this.maps.length + 1, space: 'pio', start: 0xcf8, end: 0xcff });
    this.out(`MARK 0.000000 muxvisor access log (${h.tool}, started ${h.started})${this.opts.mmioOnly ? '' : '; port I/O appears as addresses in MAPs of port regions'}`);
  }

  private mapFor(space: string, addr: number, t: number): number {
    const m = this.maps.find((x) => x.space === space && addr >= x.start && addr <= x.end);
    if (!m) return 0;
    if (!this.announced.has(m.id)) {
      this.announced.add(m.id);
      this.out(`MAP ${stamp(t)} ${m.id} ${hx(m.start)} ${hx(m.start)} ${hx(m.end - m.start + 1)} 0x0 0`);
    }
    return m.id;
  }

  record(r: LogRecord): void {
    if (r.type === 'header') return this.header(r);
    if (r.type === 'end') return;
    if (r.type === 'event') return this.out(`MARK ${stamp(r.t)} ${eventLine(r).replace(/^\S+\s+/, '')}`);
    if (r.space === 'config' || (this.opts.mmioOnly && r.space !== 'mmio')) return;
    const id = this.mapFor(r.space, r.addr, r.t);
    const op = r.dir === 'r' ? 'R' : 'W';
    if (r.count > 1) {
      const bytes = (r.dir === 'w' ? r.data : r.answerData)?.bytes;
      if (bytes) {
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        for (let i = 0; i + r.size <= bytes.length; i += r.size) {
          const v = r.size === 1 ? dv.getUint8(i) : r.size === 2 ? dv.getUint16(i, true) : dv.getUint32(i, true);
          this.out(`${op} ${r.size} ${stamp(r.t)} ${id} ${hx(r.addr)} ${hx(v)} 0x0 0`);
        }
        return;
      }
      const d = r.dir === 'r' ? r.answerData : r.data;
      return this.out(`MARK ${stamp(r.t)} ${r.guest} ${op === 'R' ? 'read' : 'write'} x${r.count} of ${r.size} at ${hx(r.addr)}: ${d?.len ?? 0} B crc ${d?.crc ?? '?'}`);
    }
    const v = r.dir === 'r' ? r.answer : r.value;
    this.out(`${op} ${r.size} ${stamp(r.t)} ${id} ${hx(r.addr)} ${hx(v ?? 0)} 0x0 0`);
  }
}
