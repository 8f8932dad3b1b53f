// Ethernet addressing for the shared NIC: which guest a frame is for, and whether a guest's
// transmit is legal (its own source MAC, a length a card may send).

/** Longest frame a guest may send: 1514 bytes without FCS (no VLAN tag on a shared card). */
export const TX_FRAME_MAX = 1514;
/** Shortest: destination, source and type. */
export const TX_FRAME_MIN = 14;

/** The group bit of a destination: broadcast and multicast. */
export const isGroup = (frame: Uint8Array): boolean => (frame[0] & 1) === 1;

export function macEquals(frame: Uint8Array, at: number, mac: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (frame[at + i] !== mac[i]) return false;
  return true;
}

/** Whether `frame` may be given to a guest with `mac`: group frames to all (its card filters them), unicast to its MAC, anything to a promiscuous grant. */
export function addressedTo(frame: Uint8Array, mac: Uint8Array, promiscuous: boolean): boolean {
  return promiscuous || isGroup(frame) || macEquals(frame, 0, mac);
}

export type TxVerdict = 'ok' | 'spoofed' | 'badLength';

/** A guest's frame leaves only with its own source MAC and a legal length. */
export function checkTransmit(frame: Uint8Array, mac: Uint8Array): TxVerdict {
  if (frame.length < TX_FRAME_MIN || frame.length > TX_FRAME_MAX) return 'badLength';
  return macEquals(frame, 6, mac) ? 'ok' : 'spoofed';
}
