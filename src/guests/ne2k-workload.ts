// The built-in scripted driver `ne2k` for `muxvisor run`: a guest on a shared NE2000 that
// probes and initialises its card as Linux does, then for `seconds` sends demo frames to each
// MAC in `peers` in turn and a broadcast every fourth round, draining its ring each round and
// checking every frame it reads (intact, addressed to it or broadcast, in order per sender).
// `gapMs` (default 0: flood) pauses between rounds: a scripted guest runs on the supervisor's
// event loop, and flooding it leaves a trapped program's accesses (served by the same loop)
// one turn per eight rounds.
// Guests started this way run independently, so it checks what it can alone: no bad frame,
// and, with peers, at least one frame from someone.

import { Ne2kDriver } from './ne2k-driver.ts';
import { yieldToLoop, type GuestPort } from './port.ts';
import { findPciIoBar, PortDevice } from './port-device.ts';
import { BROADCAST_MAC, decodeDemoFrame, demoFrame } from './nic-traffic.ts';
import { parseMac } from '../devices/ne2k/memory.ts';

export interface Ne2kWorkloadResult {
  ok: boolean;
  sent: number;
  received: number;
  bad: number;
  detail: string;
}

export async function runNe2kWorkload(port: GuestPort, options: Record<string, unknown>, signal: AbortSignal): Promise<Ne2kWorkloadResult> {
  const seconds = typeof options.seconds === 'number' ? options.seconds : 5;
  const gapMs = options.gapMs ?? 0;
  if (typeof gapMs !== 'number' || !(gapMs >= 0)) throw new Error(`options.gapMs: ${JSON.stringify(gapMs)} is not a number of milliseconds >= 0`);
  const peerTexts = Array.isArray(options.peers) ? options.peers.map(String) : [];
  const peers = peerTexts.map((t) => {
    const m = parseMac(t);
    if (!m) throw new Error(`options.peers: ${JSON.stringify(t)} is not a MAC address`);
    return m;
  });
  const base = await findPciIoBar(port, 0x10ec, 0x8029);
  if (base === null) return { ok: false, sent: 0, received: 0, bad: 0, detail: 'no RTL8029 (10ec:8029) in its PCI scan' };
  const drv = new Ne2kDriver(new PortDevice(port, base));
  const mac = await drv.probe();
  await drv.init(mac);
  const me = mac[5];
  const last = new Map<number, number>();
  let sent = 0;
  let received = 0;
  let bad = 0;
  const drain = async () => {
    for (const r of await drv.receive()) {
      received++;
      const d = decodeDemoFrame(r.frame);
      const toMe = r.frame.subarray(0, 6).every((b, i) => b === mac[i]);
      const toAll = r.frame.subarray(0, 6).every((b) => b === 0xff);
      if (!d || !(toMe || toAll) || (last.get(d.src) ?? -1) >= d.seq) bad++;
      if (d) last.set(d.src, d.seq);
    }
  };
  const deadline = Date.now() + seconds * 1000;
  let seq = 0;
  for (let round = 0; !signal.aborted && Date.now() < deadline; round++) {
    const len = 46 + ((round * 37) % 450);
    if (peers.length > 0) {
      await drv.send(demoFrame(peers[round % peers.length], mac, me, 'unicast', seq++, len));
      sent++;
    }
    if (round % 4 === 3) {
      await drv.send(demoFrame(BROADCAST_MAC, mac, me, 'broadcast', seq++, len));
      sent++;
    }
    await drain();
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
    else if (round % 8 === 7) await yieldToLoop();
  }
  // Frames still on their way from guests that ran a little longer.
  await new Promise((r) => setTimeout(r, 100));
  await drain();
  const ok = bad === 0 && drv.rxErrors === 0 && (peers.length === 0 || received > 0);
  return { ok, sent, received, bad, detail: `${sent} frames sent, ${received} received, ${bad + drv.rxErrors} bad` };
}
