// The receive address filter (RCR): unicast against PAR0-5, broadcast with AB, multicast with
// AM through the 64-bit hash in MAR0-7, everything with PRO. The hash index is the top six
// bits of the big-endian Ethernet CRC-32 of the destination (QEMU's net_crc32 >> 26, Linux's
// ether_crc(6, addr) >> 26 in lib8390's make_mc_bits).

import { ENRCR_AB, ENRCR_AM, ENRCR_PRO, ETH_ALEN } from './regs.ts';
import type { Ne2kRegs } from './state.ts';

const CRC32_POLY_BE = 0x04c11db7;

/** Ethernet CRC-32, bits fed LSB first, register shifted MSB first, no final inversion (QEMU net_crc32). */
export function crc32Be(data: Uint8Array, len = data.length): number {
  let crc = 0xffff_ffff;
  for (let i = 0; i < len; i++) {
    let b = data[i];
    for (let bit = 0; bit < 8; bit++, b >>= 1) {
      const carry = ((crc >>> 31) ^ (b & 1)) & 1;
      crc = (crc << 1) >>> 0;
      if (carry) crc = ((crc ^ CRC32_POLY_BE) | carry) >>> 0;
    }
  }
  return crc >>> 0;
}

/** MAR bit index (0-63) a multicast destination hashes to. */
export function multicastIndex(dst: Uint8Array): number {
  return crc32Be(dst, ETH_ALEN) >>> 26;
}

export function isBroadcast(frame: Uint8Array): boolean {
  for (let i = 0; i < ETH_ALEN; i++) if (frame[i] !== 0xff) return false;
  return true;
}

export type FilterVerdict = 'unicast' | 'broadcast' | 'multicast' | 'promiscuous' | null;

/** Does the card take this frame? null = rejected. `frame` has at least 6 bytes. */
export function acceptFrame(regs: Ne2kRegs, frame: Uint8Array): FilterVerdict {
  if (isBroadcast(frame)) {
    if (regs.rcr & ENRCR_AB) return 'broadcast';
  } else if (frame[0] & 0x01) {
    if (regs.rcr & ENRCR_AM) {
      const idx = multicastIndex(frame);
      if (regs.mar[idx >> 3] & (1 << (idx & 7))) return 'multicast';
    }
  } else {
    let match = true;
    for (let i = 0; i < ETH_ALEN; i++) if (frame[i] !== regs.par[i]) match = false;
    if (match) return 'unicast';
  }
  return regs.rcr & ENRCR_PRO ? 'promiscuous' : null;
}
