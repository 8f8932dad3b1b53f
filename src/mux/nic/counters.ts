// Per-guest traffic counters of a shared NIC (the supervisor's statistics, demo --json).

export type NicGuestCounters = {
  /** Frames stored in the guest's virtual receive ring, and their bytes. */
  rxPackets: number;
  rxBytes: number;
  /** Frames the guest sent that left (to the wire and/or other guests), and their bytes. */
  txPackets: number;
  txBytes: number;
  /** Frames for the guest its virtual card could not store (ring full, card stopped, ring invalid, monitor). */
  dropped: number;
  /** Frames the guest sent with a source MAC not its own: never delivered. */
  spoofed: number;
  /** Frames offered to the guest that its own RCR/PAR/MAR filters refused. */
  filtered: number;
  /** Frames the guest sent shorter than 14 or longer than 1514 bytes: never delivered. */
  txInvalid: number;
  /** Frames the guest sent for the wire that the physical card could not take (its transmit queue full). */
  txDropped: number;
};

export const NIC_COUNTER_HELP: Record<keyof NicGuestCounters, string> = {
  rxPackets: 'frames stored in the guest\'s virtual receive ring',
  rxBytes: 'bytes of those frames',
  txPackets: 'frames the guest sent that were delivered (wire or other guests)',
  txBytes: 'bytes of those frames',
  dropped: 'frames for the guest its virtual card could not store (ring full, stopped, invalid ring, monitor mode)',
  spoofed: 'frames the guest sent with a source MAC other than its granted one (dropped)',
  filtered: 'frames offered to the guest that its own receive filters (RCR, PAR, MAR) refused',
  txInvalid: 'frames the guest sent with an illegal length (dropped)',
  txDropped: 'frames the guest sent for the wire that the physical card could not take in time (its transmit queue was full)',
};

export function zeroNicCounters(): NicGuestCounters {
  return { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, dropped: 0, spoofed: 0, filtered: 0, txInvalid: 0, txDropped: 0 };
}
