// The NE2000/RTL8029 register file as an xstate v5 statechart. The card's condition is five
// independent facts a driver changes by register writes (DP8390 datasheet; Linux lib8390.c):
//
//   run   started | stopped         CR.STA / CR.STP (a CR write with neither keeps it)
//   page  page0 | pageN             CR.PS1-0 (pages 1-3 alias registers 0x01-0x0F)
//   dma   dmaIdle | dmaBusy         a remote read/write command with bytes left: until the byte
//                                   count is consumed (RDC), or CR aborts it (RD2, 0x20)
//   tx    txIdle | txPending        a frame staged or in flight: from a remote-write command
//                                   (the upload into the transmit pages) or CR.TXP until the
//                                   card clears TXP (PTX/TXE); another guest's upload into the
//                                   same pages must not come in between
//   tcr   normal | loopback         TCR.LB1-0: loopback is Linux's overrun recovery (and init)
//
// Safe, so the card may change hands, is exactly one combination: started, page 0, no remote
// DMA, no transmit pending, out of loopback. The chart is their product (32 leaves, under
// `started` and `stopped`), generated from `nextCondition` so every leaf answers every event
// the same way; no guards, so the MUX runs it on the compiled fast path.

import { setup } from 'xstate';

export interface Condition {
  started: boolean;
  page0: boolean;
  dmaBusy: boolean;
  txPending: boolean;
  loopback: boolean;
}

/** The events (classify.ts makes them): one per CR write, and the others. */
export const CR_RUN = ['STA', 'STP', ''] as const; // '' = a CR write with neither STA nor STP
export const CR_PAGE = ['P0', 'PN'] as const;
export const CR_DMA = ['NODMA', 'RD', 'WR'] as const; // RD2 clear: WR remote write 0x10; RD remote read 0x08 (or 0x00/0x18)

/** Event type of a CR write: `CR_STA_P0_NODMA_TXP`, `CR_STP_PN_NODMA`, `CR_P0_RD` (neither STA nor STP). */
export function crEventName(run: (typeof CR_RUN)[number], page: (typeof CR_PAGE)[number], dma: (typeof CR_DMA)[number], txp: boolean): string {
  return ['CR', run, page, dma, txp ? 'TXP' : ''].filter(Boolean).join('_');
}

/** Every CR event type; a stopping write never transmits (STP wins, the card clears TXP). */
export const CR_EVENTS: string[] = CR_RUN.flatMap((run) =>
  CR_PAGE.flatMap((page) => CR_DMA.flatMap((dma) => (run === 'STP' ? [false] : [false, true]).map((txp) => crEventName(run, page, dma, txp)))),
);

export const OTHER_EVENTS = [
  'DMA_END', // the remote byte count was consumed (the MUX counts data-port bytes; a zero count ends at once)
  'TX_DONE', // after a TXP, CR reads TXP clear: the transmit finished (PTX or TXE)
  'LOOP_ON', // TCR write with a loopback mode
  'LOOP_OFF', // TCR write in normal mode
  'RESET', // reset-port read: the card stops, page 0, no DMA, loopback (DP8390; our model)
] as const;

export const NE2K_EVENTS: string[] = [...CR_EVENTS, ...OTHER_EVENTS];

/** Where an event takes the card. */
export function nextCondition(c: Condition, event: string): Condition {
  if (event.startsWith('CR_')) {
    const parts = event.split('_').slice(1);
    const n = { ...c };
    if (parts.includes('STP')) {
      n.started = false;
      n.txPending = false; // the card stops: a transmit in flight ends or is abandoned, nothing stays pending
    } else if (parts.includes('STA')) n.started = true;
    n.page0 = parts.includes('P0');
    n.dmaBusy = parts.includes('RD') || parts.includes('WR');
    if (parts.includes('WR') || parts.includes('TXP')) n.txPending = true;
    return n;
  }
  switch (event) {
    case 'DMA_END':
      return { ...c, dmaBusy: false };
    case 'TX_DONE':
      return { ...c, txPending: false };
    // TCR is a page-0 register (on pages 1-3 its offset is MAR5 or a diagnostic register, and
    // classify sees no TCR there): the chart follows it on page 0 only.
    case 'LOOP_ON':
      return c.page0 ? { ...c, loopback: true } : c;
    case 'LOOP_OFF':
      return c.page0 ? { ...c, loopback: false } : c;
    case 'RESET':
      return { started: false, page0: true, dmaBusy: false, txPending: false, loopback: true };
    default:
      return c;
  }
}

export const isSafe = (c: Condition): boolean => c.started && c.page0 && !c.dmaBusy && !c.txPending && !c.loopback;

/** Leaf key under `started`/`stopped`: `page0_dmaIdle_txIdle_normal`. */
export function leafKey(c: Condition): string {
  return [c.page0 ? 'page0' : 'pageN', c.dmaBusy ? 'dmaBusy' : 'dmaIdle', c.txPending ? 'txPending' : 'txIdle', c.loopback ? 'loopback' : 'normal'].join('_');
}

/** Dotted state path: `started.page0_dmaIdle_txIdle_normal`. */
export const statePathOf = (c: Condition): string => `${c.started ? 'started' : 'stopped'}.${leafKey(c)}`;

export const ALL_CONDITIONS: Condition[] = [false, true].flatMap((started) =>
  [true, false].flatMap((page0) =>
    [false, true].flatMap((dmaBusy) => [false, true].flatMap((txPending) => [false, true].map((loopback) => ({ started, page0, dmaBusy, txPending, loopback })))),
  ),
);

/** The only safe leaf: where the MUX's reset path ends and where a card nobody drove yet starts. */
export const SAFE_CONDITION: Condition = { started: true, page0: true, dmaBusy: false, txPending: false, loopback: false };

const RESET_TARGET = nextCondition(SAFE_CONDITION, 'RESET');

function leafNode(c: Condition): { tags?: string[]; on: Record<string, string> } {
  const on: Record<string, string> = {};
  for (const ev of NE2K_EVENTS) {
    if (ev === 'RESET') continue; // declared once, at the root
    const n = nextCondition(c, ev);
    if (statePathOf(n) !== statePathOf(c)) on[ev] = `#ne2k.${statePathOf(n)}`;
  }
  return isSafe(c) ? { tags: ['safe'], on } : { on };
}

function runNode(started: boolean) {
  const leaves = ALL_CONDITIONS.filter((c) => c.started === started);
  return {
    initial: leafKey(started ? SAFE_CONDITION : RESET_TARGET),
    states: Object.fromEntries(leaves.map((c) => [leafKey(c), leafNode(c)])),
  };
}

/**
 * A card no guest has driven since the MUX took it (or since its reset path) starts in the safe
 * leaf: nothing of anybody's is in flight, so it may go to whoever asks first; that guest's
 * first CR write (Linux: stop, page 1) then moves the chart.
 */
export const ne2kChart = setup({ types: { events: {} as { type: string } } }).createMachine({
  id: 'ne2k',
  initial: 'started',
  on: { RESET: `.${statePathOf(RESET_TARGET)}` },
  states: { started: runNode(true), stopped: runNode(false) },
});
