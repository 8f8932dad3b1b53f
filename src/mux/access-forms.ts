// Access forms: one guest access as the sequence of single accesses it stands for on the bus.
//
// A `rep outsb` to a command register is that many command writes; an `outw` over two byte
// registers is two byte writes (the chipset splits it, as QEMU's memory core does by the
// region's access size); an 8-byte access is two 4-byte ones. The MUX classifies, translates
// and checks each single access, so the statechart never sees less than the device executes
// (a string or wide form must not slip a command past the classifier or the window
// translation). Only a register that declares the form takes it whole: a data port takes a
// string access (`rep insw` of a sector) as one block transfer, and may take wider sizes
// (`sizes`, 32-bit PIO on the ATA data port).

import type { Access } from '../access.ts';
import type { DevSize } from '../device.ts';
import type { Register } from './define.ts';
import type { RegisterMap } from './registers.ts';

/**
 * The most single accesses one guest access may be split into. A string access to a register
 * that is not a data port is legal but unusual (a driver writes a command byte, not 4 KiB of
 * them); above this bound it is refused as a guest error, so one access cannot hold the
 * supervisor's event loop for long.
 */
export const MAX_SPLIT_ACCESSES = 1024;

/** One piece of an element: `size` bytes at `offset`, `at` bytes into the element. */
export interface Piece {
  offset: number;
  size: DevSize;
  at: number;
}

/** How the engine runs an access: whole (one device access), split, or refused. */
export type AccessPlan = { kind: 'whole' } | { kind: 'split'; pieces: Piece[]; count: number } | { kind: 'refuse'; why: string };

const WHOLE: AccessPlan = { kind: 'whole' };

/** Does `reg`, at its own offset, take a single access of `size` as one? */
function takesSize(reg: Register, size: number): boolean {
  return size <= reg.width || (reg.sizes?.includes(size as DevSize) ?? false);
}

/** Registers of the map that lie (partly) inside [offset, offset+size) for this direction. */
function touchesRegister(regs: RegisterMap, region: number, offset: number, size: number, dir: 'read' | 'write'): boolean {
  for (let p = offset; p < offset + size; p++) if (regs.at(region, p, dir)) return true;
  // A wider register starting before `offset` that reaches into the span.
  for (let back = 1; back < 4 && back <= offset; back++) {
    const r = regs.at(region, offset - back, dir);
    if (r && r.width > back) return true;
  }
  return false;
}

/** The pieces of one element of `size` bytes at `offset`: register-wide where a register starts, else bytes. */
function piecesOf(regs: RegisterMap, region: number, offset: number, size: number, dir: 'read' | 'write'): Piece[] {
  if (!touchesRegister(regs, region, offset, size, dir)) {
    // Nothing the MUX knows lies here: the device takes it as it comes (8 bytes as two 4-byte halves).
    return size === 8 ? [{ offset, size: 4, at: 0 }, { offset: offset + 4, size: 4, at: 4 }] : [{ offset, size: size as DevSize, at: 0 }];
  }
  const out: Piece[] = [];
  for (let at = 0; at < size; ) {
    const r = regs.at(region, offset + at, dir);
    const left = size - at;
    const w = r && r.width <= left ? r.width : left >= 4 && !touchesRegister(regs, region, offset + at, 4, dir) ? 4 : 1;
    out.push({ offset: offset + at, size: w, at });
    at += w;
  }
  return out;
}

/** Decide how to run `acc` at (region, offset). */
export function planAccess(regs: RegisterMap, region: number, offset: number, acc: Access): AccessPlan {
  const count = acc.count ?? 1;
  const reg = regs.at(region, offset, acc.dir);
  if (reg && takesSize(reg, acc.size) && acc.size !== 8 && (count === 1 || reg.string)) return WHOLE;
  if (!reg && count === 1 && acc.size !== 8 && !touchesRegister(regs, region, offset, acc.size, acc.dir)) return WHOLE;
  const pieces = piecesOf(regs, region, offset, acc.size, acc.dir);
  if (count === 1 && pieces.length === 1) return WHOLE;
  if (count * pieces.length > MAX_SPLIT_ACCESSES) {
    const name = reg ? `register ${reg.name}` : `offset 0x${offset.toString(16)}`;
    return {
      kind: 'refuse',
      why: `${count > 1 ? `string access of ${count} elements` : `${acc.size}-byte access`} to ${name} stands for ${count * pieces.length} single accesses (at most ${MAX_SPLIT_ACCESSES}): refused`,
    };
  }
  return { kind: 'split', pieces, count };
}

/** The bytes of element `i` of a write (little-endian), from the string data or the value. */
export function elementBytes(acc: Access, i: number): Uint8Array {
  const size = acc.size;
  if ((acc.count ?? 1) > 1) {
    const out = new Uint8Array(size);
    if (acc.data) out.set(acc.data.subarray(i * size, (i + 1) * size));
    return out;
  }
  const out = new Uint8Array(size);
  let v = BigInt.asUintN(size * 8, BigInt(acc.value ?? 0));
  for (let b = 0; b < size; b++, v >>= 8n) out[b] = Number(v & 0xffn);
  return out;
}
