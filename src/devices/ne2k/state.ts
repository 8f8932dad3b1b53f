// The register file of one NE2000 as plain data: what a snapshot holds (with buffer memory)
// and what the MUX saves and replays per guest. Values are kept as the guest wrote them
// (a register reads back its value); they are validated where they are used.

import { E8390_NODMA, E8390_STOP, ENISR_RESET, ETH_ALEN } from './regs.ts';

export interface Ne2kRegs {
  cr: number;
  pstart: number; // page
  pstop: number; // page
  bnry: number; // page
  tpsr: number; // page
  tbcr: number; // bytes
  /** Current remote DMA address (RSAR as written, then advanced). */
  rsar: number;
  /** Remaining remote DMA byte count (RBCR as written, then counted down). */
  rbcr: number;
  isr: number;
  imr: number;
  rcr: number;
  tcr: number;
  dcr: number;
  tsr: number;
  rsr: number;
  par: number[]; // 6
  curr: number; // page
  mar: number[]; // 8
  /** Tally counters CNTR0 (alignment), CNTR1 (CRC), CNTR2 (missed); clear on read. */
  cntr: number[]; // 3
  /** RTL8029 page 3: 9346CR and CONFIG3 (full duplex). */
  cfg9346: number;
  config3: number;
}

/** Power-on values: stopped with remote DMA aborted (CR 0x21), RST set, everything else 0. */
export function powerOnRegs(): Ne2kRegs {
  return {
    cr: E8390_NODMA | E8390_STOP,
    pstart: 0,
    pstop: 0,
    bnry: 0,
    tpsr: 0,
    tbcr: 0,
    rsar: 0,
    rbcr: 0,
    isr: ENISR_RESET,
    imr: 0,
    rcr: 0,
    tcr: 0,
    dcr: 0,
    tsr: 0,
    rsr: 0,
    par: new Array<number>(ETH_ALEN).fill(0),
    curr: 0,
    mar: new Array<number>(8).fill(0),
    cntr: [0, 0, 0],
    cfg9346: 0,
    config3: 0x40, // full duplex reported, as QEMU
  };
}

const BYTE_FIELDS = ['cr', 'pstart', 'pstop', 'bnry', 'tpsr', 'isr', 'imr', 'rcr', 'tcr', 'dcr', 'tsr', 'rsr', 'curr', 'cfg9346', 'config3'] as const;
const WORD_FIELDS = ['tbcr', 'rsar', 'rbcr'] as const;
const ARRAYS = { par: ETH_ALEN, mar: 8, cntr: 3 } as const;

/** Checks a snapshot's registers (fromState): every field present and in range. */
export function checkRegs(r: unknown): Ne2kRegs {
  if (typeof r !== 'object' || r === null) throw new RangeError('ne2k state: regs must be an object');
  const o = r as Record<string, unknown>;
  const isInt = (v: unknown, max: number): boolean => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
  for (const f of BYTE_FIELDS) if (!isInt(o[f], 0xff)) throw new RangeError(`ne2k state: regs.${f} must be a byte, got ${String(o[f])}`);
  for (const f of WORD_FIELDS) if (!isInt(o[f], 0xffff)) throw new RangeError(`ne2k state: regs.${f} must be 0..0xffff, got ${String(o[f])}`);
  for (const [f, n] of Object.entries(ARRAYS)) {
    const a = o[f];
    if (!Array.isArray(a) || a.length !== n || !a.every((v) => isInt(v, 0xff))) throw new RangeError(`ne2k state: regs.${f} must be ${n} bytes`);
  }
  return copyRegs(o as unknown as Ne2kRegs);
}

export function copyRegs(r: Ne2kRegs): Ne2kRegs {
  return { ...r, par: [...r.par], mar: [...r.mar], cntr: [...r.cntr] };
}
