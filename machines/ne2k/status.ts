// Status the card keeps for whoever holds it, kept per guest across switches: the transmit
// status of the guest's own last transmit (TSR), and the tally counters (CNTR0-2, clear on
// read), which count for the card's owner. Saved from the card when a guest loses it; TSR is
// answered from the saved value until the guest transmits again; a counter read adds what the
// guest had counted before (translate.ts calls these for page-0 reads).

import type { Reply } from '../../src/access.ts';
import type { ContextRegister, GuestView } from '../../src/mux/define.ts';

export const TSR_SAVED = 'TSR_SAVED';
const COUNTERS = ['CNTR0', 'CNTR1', 'CNTR2'];
const savedCounter = (reg: string): string => `${reg}_SAVED`;

export interface StatusTrack {
  /** The card's TSR is another guest's (or nobody's): answer the saved one. */
  tsrStale?: boolean;
}

export const STATUS_CONTEXT: ContextRegister[] = [
  {
    reg: TSR_SAVED,
    reset: 0,
    // The card's TSR is the outgoing guest's only if it transmitted while it held the card.
    save: async (io, g) => {
      const s = g.scratch as StatusTrack;
      const own = s.tsrStale === false;
      s.tsrStale = true;
      return own ? io.read('TSR') : (g.context.get(TSR_SAVED) ?? 0);
    },
    replay: () => {},
  },
  ...COUNTERS.map(
    (reg): ContextRegister => ({
      reg: savedCounter(reg),
      reset: 0,
      // Reading clears the card's counter, which then counts for the incoming guest.
      save: async (io, g) => Math.min(0xff, (g.context.get(savedCounter(reg)) ?? 0) + (await io.read(reg))),
      replay: () => {},
    }),
  ),
];

/** The guest's view of a status register read (TSR, CNTR0-2) on page 0. */
export function statusReply(name: string, reply: Reply, g: GuestView): Reply | void {
  if (name === 'TSR') return (g.scratch as StatusTrack).tsrStale !== false ? { ...reply, value: g.context.get(TSR_SAVED) ?? 0 } : undefined;
  if (!COUNTERS.includes(name)) return;
  const saved = g.context.get(savedCounter(name)) ?? 0;
  if (saved === 0) return;
  g.setContext(savedCounter(name), 0);
  return { ...reply, value: Math.min(0xff, Number(reply.value) + saved) };
}

/** A TXP of the guest: TSR is its own again. */
export function transmitted(g: GuestView): void {
  (g.scratch as StatusTrack).tsrStale = false;
}
