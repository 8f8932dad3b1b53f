// Per-guest translation of NE2000 accesses (the owner's only, in order):
// - pages: the register map names page 0; the guest's CR page (tracked here) decides what an
//   access at 0x01-0x0F is. Page-1 writes (PAR0-5, CURR, MAR0-7) are recorded as the guest's
//   context; accesses on pages 1-3 reach the card without a page-0 name, so classify never
//   takes a MAR5 write for TCR. Page 3 (9346CR, CONFIG3) belongs to the MUX: writes refused.
// - remote DMA: the remaining byte count mirrors the card's RBCR (write-only on the card):
//   RBCR writes set it, data-port transfers in the selected direction consume it, and the
//   access that consumes it carries DMA_END (a command with a zero count ends at once, RDC).
// - transmit: after a CR write with TXP the MUX reads CR back (a probe); that read, and the
//   guest's own CR reads until its next upload, ask TX_CHECK: TXP clear is TX_DONE.
// - the virtual ISR: status bits the card raised for this guest before it lost the card
//   (saved on switch-out, context.ts) are ORed into its ISR reads until it acknowledges them.
// - the PROM: a guest granted a MAC reads its own station address there (prom.ts).
// - TSR and the tally counters: the guest's own (status.ts).
// - the reset port: the card stops, masks interrupts and enters loopback (DP8390; our model).

import type { Reply } from '../../src/access.ts';
import type { Answer, GuestView, MuxAccess } from '../../src/mux/define.ts';
import * as R from '../../src/devices/ne2k/regs.ts';
import { TX_CHECK } from './classify.ts';
import { notePromRead, patchPromRead, stepAddresses, type AddressTrack } from './prom.ts';
import { statusReply, transmitted } from './status.ts';

/** Page-1 registers by offset (context names). */
export const PAGE1_NAMES: Record<number, string> = Object.fromEntries([
  ...Array.from({ length: 6 }, (_, i) => [R.EN1_PHYS + i, `PAR${i}`]),
  [R.EN1_CURPAG, 'CURR'],
  ...Array.from({ length: 8 }, (_, i) => [R.EN1_MULT + i, `MAR${i}`]),
]);

/** The pseudo context register holding a guest's pending interrupt status bits. */
export const VISR = 'VISR';

interface Ne2kScratch extends AddressTrack {
  page: number;
  /** The card's remote byte count as this guest left it. */
  rbcr: number;
  /** The remote DMA direction CR selects (RD2 clear), or null; the transfer is over when rbcr is 0. */
  dma: 'read' | 'write' | 'other' | null;
  /** A TXP was written since the last upload: a CR read tells whether it finished. */
  txIssued: boolean;
}

export function scratchOf(g: GuestView): Ne2kScratch {
  const s = g.scratch as Partial<Ne2kScratch>;
  s.page ??= 0;
  s.rbcr ??= 0;
  s.dma ??= null;
  s.txIssued ??= false;
  s.addr ??= 0;
  s.promRead ??= null;
  return s as Ne2kScratch;
}

/** CR as the register a TX_CHECK read names (classify.ts). */
const txCheck = (g: GuestView) => ({ ...g.register('CR'), name: TX_CHECK });

function probeCr(a: MuxAccess, g: GuestView, event?: string): MuxAccess {
  const reg = event ? g.register('CR') : txCheck(g);
  return { reg, region: a.region, offset: R.NE_CMD, size: 1, dir: 'read', value: 0, count: 1, probe: true, ...(event ? { event } : {}) };
}

function crWrite(a: MuxAccess, g: GuestView, s: Ne2kScratch): MuxAccess | MuxAccess[] | void {
  const v = a.value & 0xff;
  s.page = v >> R.E8390_PAGE_SHIFT;
  const extra: MuxAccess[] = [];
  if (v & R.E8390_NODMA) s.dma = null;
  else {
    const rd = v & (R.E8390_RREAD | R.E8390_RWRITE);
    s.dma = rd === R.E8390_RREAD ? 'read' : rd === R.E8390_RWRITE ? 'write' : 'other';
    if (s.dma === 'write') s.txIssued = false; // a new upload: staged until its own TXP
    // A zero count completes at once (the card raises RDC inside the write).
    if (s.rbcr === 0) extra.push(probeCr(a, g, 'DMA_END'));
  }
  if (!(v & R.E8390_STOP) && v & R.E8390_TRANS) {
    s.txIssued = true;
    transmitted(g);
    extra.push(probeCr(a, g)); // classified: TXP clear is TX_DONE
  }
  return extra.length ? [a, ...extra] : undefined;
}

/** Bytes one data-port access moves: 4 for a 32-bit access, else a word in word mode (DCR.WTS), else a byte. */
function bytesPerElement(a: MuxAccess, g: GuestView): number {
  if (a.size === 4) return 4;
  return (g.context.get('DCR') ?? 0) & R.ENDCFG_WTS ? 2 : 1;
}

function dataPort(a: MuxAccess, g: GuestView, s: Ne2kScratch): MuxAccess | void {
  // The card moves the remote address on every read in a remote read, on writes while bytes are left.
  s.promRead = null;
  if (a.dir === 'read' && s.dma === 'read') notePromRead(s, a, g);
  else if (a.dir === 'write' && s.dma === 'write' && s.rbcr > 0) stepAddresses(s, a, g);
  if (s.dma === null || s.dma === 'other' || s.dma !== a.dir || s.rbcr === 0) return;
  const moved = bytesPerElement(a, g) * a.count;
  if (moved < s.rbcr) {
    s.rbcr -= moved;
    return;
  }
  s.rbcr = 0; // the direction stays selected: reads past the count still move the address
  return { ...a, event: 'DMA_END' };
}

export function translateAccess(a: MuxAccess, g: GuestView): MuxAccess | MuxAccess[] | Answer | void {
  const s = scratchOf(g);
  const off = a.offset;
  if (off === R.NE_CMD) return a.dir === 'write' ? crWrite(a, g, s) : s.txIssued ? { ...a, reg: txCheck(g) } : undefined;
  if (off === R.NE_DATAPORT) return dataPort(a, g, s);
  if (off === R.NE_RESET) {
    if (a.dir === 'read') {
      s.page = 0;
      s.rbcr = 0;
      s.dma = null;
      s.txIssued = false;
      g.setContext('IMR', 0);
      g.setContext('TCR', ((g.context.get('TCR') ?? 0) & ~R.ENTCR_LOOPBACK) | 0x02);
    }
    return;
  }
  if (off < 1 || off > 0x0f) return;
  const v = a.value & 0xff;
  switch (s.page) {
    case 0:
      if (a.dir !== 'write') return;
      if (off === R.EN0_RSARLO) s.addr = (s.addr & 0xff00) | v;
      else if (off === R.EN0_RSARHI) s.addr = (s.addr & 0x00ff) | (v << 8);
      else if (off === R.EN0_RCNTLO) s.rbcr = (s.rbcr & 0xff00) | v;
      else if (off === R.EN0_RCNTHI) s.rbcr = (s.rbcr & 0x00ff) | (v << 8);
      else if (off === R.EN0_ISR) {
        const pending = g.context.get(VISR) ?? 0;
        if (pending & v) g.setContext(VISR, pending & ~v);
      }
      return;
    case 1:
      if (a.dir === 'write') g.setContext(PAGE1_NAMES[off], v);
      return { ...a, reg: undefined };
    case 2:
      return { ...a, reg: undefined }; // the card ignores page-2 writes; reads show page-0 registers
    default:
      if (a.dir === 'write') return { answer: { value: 0 }, denied: `page 3 register 0x${off.toString(16)} (9346CR/CONFIG) belongs to the MUX` };
      return { ...a, reg: undefined };
  }
}

export function translateReply(a: MuxAccess, reply: Reply, g: GuestView): Reply | void {
  const name = a.reg?.name;
  if (name === 'DATA') return patchPromRead(scratchOf(g), a, reply);
  if (name === 'TSR' || name?.startsWith('CNTR')) return statusReply(name, reply, g);
  if (name !== 'ISR') return;
  const pending = g.context.get(VISR) ?? 0;
  if (pending) return { ...reply, value: Number(reply.value) | pending };
}
