// `log show`: one readable line per record, e.g.
//   0.012345  alice  pio  w  ATA_REG_CMD  0x1f7  = 0xc8 READ DMA
//   0.012351  alice  pio  r  ATA_REG_STATUS  0x1f7  -> 0x58 DRDY DSC DRQ
//   0.012360  alice  pio  r  ATA_REG_DATA  0x1f0  x256 -> 512 B crc 1a2b3c4d
//   0.012400  alice  event switch  from bob  [idle]

import { hex } from '../access.ts';
import { decodeValue } from './names.ts';
import type { AccessRecord, EventRecord, LogValue } from './record.ts';

const secs = (t: number): string => (t / 1e9).toFixed(6);
const val = (v: LogValue): string => (typeof v === 'number' ? hex(v) : v);

/** Column widths: guest and register names padded to these. */
export interface ShowWidths {
  guest: number;
  reg: number;
}

export function accessLine(a: AccessRecord, w: ShowWidths = { guest: 8, reg: 18 }): string {
  const reg = a.reg ?? (a.device ? `${a.device}+?` : 'unmapped');
  const count = a.count > 1 ? ` x${a.count}` : '';
  let what: string;
  if (a.dir === 'w') {
    if (a.data) what = `${count} = ${a.data.len} B crc ${a.data.crc}`;
    else {
      const d = typeof a.value === 'number' ? decodeValue(a.reg, 'w', a.value) : '';
      what = ` = ${val(a.value ?? 0)}${d ? ` ${d}` : ''}`;
    }
  } else if (a.answerData) what = `${count} -> ${a.answerData.len} B crc ${a.answerData.crc}`;
  else {
    const d = typeof a.answer === 'number' ? decodeValue(a.reg, 'r', a.answer) : '';
    what = ` -> ${val(a.answer ?? 0)}${d ? ` ${d}` : ''}`;
  }
  const space = a.space === 'config' ? 'cfg' : a.space;
  const extra = [a.error ? `ERROR ${a.error}` : '', a.stallNs >= 1000 ? `stalled ${(a.stallNs / 1e3).toFixed(0)} us` : '', a.before !== undefined && a.before !== a.after ? `[${a.before} -> ${a.after}]` : '']
    .filter(Boolean)
    .join('  ');
  return `${secs(a.t)}  ${a.guest.padEnd(w.guest)}  ${space.padEnd(4)} ${a.dir}  ${reg.padEnd(w.reg)}  ${hex(a.addr).padEnd(6)}${what}${extra ? `  ${extra}` : ''}`;
}

export function eventLine(e: EventRecord, w: ShowWidths = { guest: 8, reg: 18 }): string {
  let what = e.kind;
  if (e.kind === 'irq') what += e.level ? ' raise' : ' lower';
  if (e.dma) what += ` ${e.dma.dir === 'read' ? 'from memory' : 'to memory'} ${hex(e.dma.addr)} ${e.dma.len} B crc ${e.dma.crc}`;
  if (e.detail) what += `  ${e.detail}`;
  const state = e.state === undefined ? '' : `  [${e.state}${e.safe === false ? ', unsafe' : ''}]`;
  return `${secs(e.t)}  ${(e.guest ?? '-').padEnd(w.guest)}  ${e.device}  ${what}${state}`;
}
