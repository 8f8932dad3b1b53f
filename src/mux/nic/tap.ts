// A tap on a shared NIC: sees every frame on the wire, and per guest what it sent and what
// was stored in its ring (capture to pcap, tests).

export interface NicTap {
  wire?(frame: Uint8Array, dir: 'in' | 'out'): void;
  guest?(guest: string, frame: Uint8Array, dir: 'rx' | 'tx'): void;
}
