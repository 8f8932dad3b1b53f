// Ethernet frames a scripted guest needs to talk to a real Linux stack: ARP request and IPv4
// ICMP echo request, with their checksums (RFC 826, RFC 791, RFC 792).

export const ipBytes = (ip: string): number[] => ip.split('.').map(Number);

/** The ones' complement sum of 16-bit words (the Internet checksum). */
export function inetChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i] << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function arpRequest(srcMac: Uint8Array, srcIp: string, targetIp: string): Uint8Array {
  const f = new Uint8Array(42);
  f.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0);
  f.set(srcMac, 6);
  f.set([0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1], 12);
  f.set(srcMac, 22);
  f.set(ipBytes(srcIp), 28);
  f.set(ipBytes(targetIp), 38);
  return f;
}

/** An ARP reply frame's sender MAC if it answers `ip`, else null. */
export function arpReplyFor(frame: Uint8Array, ip: string): Uint8Array | null {
  if (frame[12] !== 0x08 || frame[13] !== 0x06 || frame[21] !== 2) return null;
  return ipBytes(ip).every((b, i) => frame[28 + i] === b) ? frame.slice(22, 28) : null;
}

export function icmpEcho(srcMac: Uint8Array, dstMac: Uint8Array, srcIp: string, dstIp: string, id: number, seq: number, payload: Uint8Array): Uint8Array {
  const icmp = new Uint8Array(8 + payload.length);
  icmp.set([8, 0, 0, 0, id >> 8, id & 0xff, seq >> 8, seq & 0xff]);
  icmp.set(payload, 8);
  const c = inetChecksum(icmp);
  icmp[2] = c >> 8;
  icmp[3] = c & 0xff;
  const ip = new Uint8Array(20);
  const total = 20 + icmp.length;
  ip.set([0x45, 0, total >> 8, total & 0xff, 0, 1, 0x40, 0, 64, 1, 0, 0]);
  ip.set(ipBytes(srcIp), 12);
  ip.set(ipBytes(dstIp), 16);
  const ic = inetChecksum(ip);
  ip[10] = ic >> 8;
  ip[11] = ic & 0xff;
  const f = new Uint8Array(14 + total);
  f.set(dstMac, 0);
  f.set(srcMac, 6);
  f.set([0x08, 0x00], 12);
  f.set(ip, 14);
  f.set(icmp, 34);
  return f;
}

/** An ICMP echo reply's payload if `frame` is one for id/seq, else null. */
export function echoReplyPayload(frame: Uint8Array, id: number, seq: number): Uint8Array | null {
  if (frame[12] !== 0x08 || frame[13] !== 0x00 || frame[23] !== 1) return null;
  const ihl = (frame[14] & 0x0f) * 4;
  const at = 14 + ihl;
  if (frame[at] !== 0 || ((frame[at + 4] << 8) | frame[at + 5]) !== id || ((frame[at + 6] << 8) | frame[at + 7]) !== seq) return null;
  const total = (frame[16] << 8) | frame[17];
  return frame.slice(at + 8, 14 + total);
}
