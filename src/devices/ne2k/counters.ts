// What the device counts: traffic, and a guest's mistakes (counted, never thrown). The tally
// counters CNTR0-2 a driver reads are registers (state.ts); these are the host's metrics.

import { ENISR_COUNTERS } from './regs.ts';
import type { Ne2kRegs } from './state.ts';

export const COUNTER_HELP = {
  // traffic
  rxFrames: 'frames written into the receive ring',
  rxBytes: 'bytes of those frames (after padding to 60)',
  rxFiltered: 'frames the RCR/PAR/MAR filters rejected (not for this card)',
  rxDroppedStopped: 'frames that arrived while the card was stopped (CR.STP)',
  rxDroppedFull: 'frames dropped because the ring had less than 1518 bytes free (QEMU\'s rule); CNTR2 counts them too',
  rxMonitor: 'frames accepted in monitor mode (RCR.MON): counted in CNTR2, not stored',
  txFrames: 'frames handed to the wire',
  txBytes: 'bytes of those frames',
  txLoopback: 'frames transmitted in loopback mode (TCR.LB), kept off the wire',
  // a guest's mistakes
  badWidth: 'a register read/written with a width other than 1 byte, or the reset port with 2/4',
  badRegister: 'an access to an offset the card does not decode (0x11-0x1E)',
  promWrite: 'remote DMA writes aimed at the station-address PROM (dropped)',
  dmaUnmapped: 'remote DMA bytes outside the PROM and the 32 KiB buffer (read 0xFF, writes dropped)',
  dmaNotStarted: 'data-port accesses while CR did not select that remote DMA direction',
  dmaReadPastCount: 'data-port reads after the remote byte count reached 0 (Linux\'s PROM probe does 16)',
  dmaWritePastCount: 'data-port writes after the remote byte count reached 0 (dropped)',
  ringInvalid: 'frames dropped because PSTART/PSTOP do not describe a ring inside buffer memory (CVE-2015-5278/5279, CVE-2016-2841)',
  ringPointerOutside: 'CURR outside [PSTART, PSTOP) when a frame arrived: reception restarted at PSTART (CVE-2018-10839)',
  ringRegisterOutside: 'PSTART/PSTOP/BNRY/CURR/TPSR written with a page outside buffer memory 0x40-0xC0',
  rxOversize: 'frames longer than 1518 bytes offered by the wire (dropped)',
  txBadLength: 'transmits of 0 or more than 1518 bytes (aborted: TXE, TSR.ABT)',
  txOutside: 'transmits whose TPSR/TBCR leave buffer memory (aborted: TXE, TSR.ABT)',
  page3Write: 'page-3 writes other than 9346CR and an unlocked CONFIG3 (ignored)',
} as const;

export type CounterName = keyof typeof COUNTER_HELP;
export type Ne2kCounters = Record<CounterName, number>;

export function zeroCounters(): Ne2kCounters {
  return Object.fromEntries(Object.keys(COUNTER_HELP).map((k) => [k, 0])) as Ne2kCounters;
}

/** Tally counter indices. */
export const CNTR_ALIGN = 0;
export const CNTR_CRC = 1;
export const CNTR_MISSED = 2;

/** Bump a tally counter (8-bit, saturating); CNT is raised when its MSB becomes set (DP8390). */
export function bumpTally(regs: Ne2kRegs, which: number): void {
  if (regs.cntr[which] < 0xff) regs.cntr[which]++;
  if (regs.cntr[which] & 0x80) regs.isr |= ENISR_COUNTERS;
}
