// The NIC demo's traffic: frames a scripted guest sends and checks. Each frame carries who
// sent it, to whom (a guest, everyone, or the outside peer), a sequence number and a payload
// derived from them, so a receiver can tell a frame that is intact and meant for it from one
// that is not.

export const DEMO_ETHERTYPE = 0x88b5; // IEEE local experimental
export const BROADCAST_MAC = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
/** The outside host of the udp backend: it echoes what is sent to it. */
export const PEER_MAC = Uint8Array.from([0x52, 0x54, 0x00, 0xfe, 0x00, 0x01]);

export type FrameKind = 'unicast' | 'broadcast' | 'peer' | 'echo';
const KIND_CODE: Record<FrameKind, number> = { unicast: 1, broadcast: 2, peer: 3, echo: 4 };
const CODE_KIND = new Map(Object.entries(KIND_CODE).map(([k, v]) => [v, k as FrameKind]));
const HEADER = 14 + 10; // Ethernet + magic(2) src(1) kind(1) seq(4) len(2)

export const guestMac = (i: number): Uint8Array => Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, (i + 1) & 0xff]);
export const formatMacText = (m: Uint8Array): string => [...m].map((b) => b.toString(16).padStart(2, '0')).join(':');

const patternByte = (src: number, seq: number, i: number): number => (src * 131 + seq * 7 + i * 29 + (i >> 7)) & 0xff;

export function demoFrame(dst: Uint8Array, src: Uint8Array, srcIndex: number, kind: FrameKind, seq: number, payloadLen: number): Uint8Array {
  const f = new Uint8Array(HEADER + payloadLen);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = DEMO_ETHERTYPE >> 8;
  f[13] = DEMO_ETHERTYPE & 0xff;
  f[14] = 0x4d; // 'M'
  f[15] = 0x58; // 'X'
  f[16] = srcIndex;
  f[17] = KIND_CODE[kind];
  new DataView(f.buffer).setUint32(18, seq >>> 0);
  f[22] = payloadLen >> 8;
  f[23] = payloadLen & 0xff;
  for (let i = 0; i < payloadLen; i++) f[HEADER + i] = patternByte(srcIndex, seq, i);
  return f;
}

export interface DecodedFrame {
  src: number;
  kind: FrameKind;
  seq: number;
}

/** The frame's header if it is an intact demo frame (a received frame may carry padding after the payload), else null. */
export function decodeDemoFrame(f: Uint8Array): DecodedFrame | null {
  if (f.length < HEADER || ((f[12] << 8) | f[13]) !== DEMO_ETHERTYPE || f[14] !== 0x4d || f[15] !== 0x58) return null;
  const kind = CODE_KIND.get(f[17]);
  const len = (f[22] << 8) | f[23];
  if (!kind || HEADER + len > f.length) return null;
  const src = f[16];
  const seq = new DataView(f.buffer, f.byteOffset).getUint32(18);
  for (let i = 0; i < len; i++) if (f[HEADER + i] !== patternByte(src, seq, i)) return null;
  return { src, kind, seq };
}

/** The outside peer's answer: the same frame back to its sender, marked `echo`. */
export function echoOf(f: Uint8Array): Uint8Array {
  const e = f.slice();
  e.set(f.subarray(6, 12), 0);
  e.set(PEER_MAC, 6);
  e[17] = KIND_CODE.echo;
  return e;
}
