// Each guest's own station address: a guest granted a MAC (`{ "device": "nic0", "mac": ... }`)
// reads its own PROM image (the MAC doubled, as the card's) where remote DMA reads the PROM
// (addresses 0x00-0x1F), so an unmodified driver programs PAR with it. The MUX follows the
// remote address per guest (RSAR writes, data-port steps, the wrap from PSTOP to PSTART) as the
// card does (src/devices/ne2k/remote-dma.ts) and patches the bytes that came from the PROM.

import type { Reply } from '../../src/access.ts';
import type { GuestView, MuxAccess } from '../../src/mux/define.ts';
import { buildProm, parseMac } from '../../src/devices/ne2k/memory.ts';
import { ENDCFG_WTS, NE_PROM_SIZE } from '../../src/devices/ne2k/regs.ts';

export interface AddressTrack {
  /** The card's remote address as this guest left it. */
  addr: number;
  /** Reply byte -> card address for the data-port read in flight (-1: not from memory), when one touches the PROM. */
  promRead: number[] | null;
  /** The guest's PROM image (null: no MAC granted, the card's own PROM answers). */
  prom?: Uint8Array | null;
}

/** The guest's PROM image, from its grant's MAC. */
function promOf(s: AddressTrack, g: GuestView): Uint8Array | null {
  if (s.prom === undefined) {
    const mac = g.options.mac === undefined ? null : parseMac(g.options.mac);
    s.prom = mac ? buildProm(mac) : null;
  }
  return s.prom;
}

/**
 * The card address of each reply byte of a data-port access, advancing the remote address
 * as the card does: a 4-byte access is two word steps, a 1/2-byte one a word step in word mode
 * (DCR.WTS, even address) or a byte step; after each step the address wraps from PSTOP to PSTART.
 */
export function stepAddresses(s: AddressTrack, a: MuxAccess, g: GuestView): number[] {
  const word = ((g.context.get('DCR') ?? 0) & ENDCFG_WTS) !== 0;
  const pstart = g.context.get('PSTART') ?? 0;
  const pstop = g.context.get('PSTOP') ?? 0;
  const out: number[] = [];
  const step = (len: 1 | 2): number => {
    const at = len === 2 ? s.addr & ~1 : s.addr;
    s.addr = (s.addr + len) & 0xffff;
    if (s.addr === pstop << 8) s.addr = pstart << 8;
    return at;
  };
  for (let i = 0; i < a.count; i++) {
    if (a.size === 4) {
      const lo = step(2);
      const hi = step(2);
      out.push(lo, lo + 1, hi, hi + 1);
    } else if (word) {
      const at = step(2);
      out.push(at, ...(a.size === 2 ? [at + 1] : []));
    } else {
      out.push(step(1), ...(a.size === 2 ? [-1] : []));
    }
  }
  return out;
}

/** Before a data-port read: note which reply bytes the guest's PROM answers. */
export function notePromRead(s: AddressTrack, a: MuxAccess, g: GuestView): void {
  const addrs = stepAddresses(s, a, g);
  s.promRead = promOf(s, g) && addrs.some((x) => x >= 0 && x < NE_PROM_SIZE) ? addrs : null;
}

/** After it: the PROM bytes replaced by the guest's own. */
export function patchPromRead(s: AddressTrack, a: MuxAccess, reply: Reply): Reply | void {
  const addrs = s.promRead;
  const prom = s.prom;
  s.promRead = null;
  if (!addrs || !prom) return;
  const bytes = new Uint8Array(addrs.length);
  if (reply.data) bytes.set(reply.data.subarray(0, bytes.length));
  else for (let i = 0; i < a.size; i++) bytes[i] = (Number(reply.value) >>> (8 * i)) & 0xff;
  addrs.forEach((x, i) => {
    if (x >= 0 && x < NE_PROM_SIZE) bytes[i] = prom[x];
  });
  if (a.count > 1 || reply.data) return { ...reply, data: bytes };
  let v = 0;
  for (let i = a.size - 1; i >= 0; i--) v = v * 256 + bytes[i];
  return { ...reply, value: v };
}
