// One scripted NE2000 guest of the NIC demo: probes and initialises its card as Linux does
// (src/guests/ne2k-driver.ts), then sends frames to the other guests in turn, a broadcast
// every fourth round and, with an outside peer, a frame to it (which it echoes), draining its
// ring each round and checking every frame it reads: intact, addressed to it, in order.

import { Ne2kDriver } from '../guests/ne2k-driver.ts';
import { yieldToLoop } from '../guests/port.ts';
import { arpReplyFor, arpRequest, echoReplyPayload, icmpEcho } from '../guests/net-frames.ts';
import { BROADCAST_MAC, decodeDemoFrame, demoFrame, guestMac, PEER_MAC } from '../guests/nic-traffic.ts';

/**
 * The outside peer: `echo` (the udp backend's peer echoes demo frames sent to PEER_MAC), or
 * `ping` (a Linux host behind a TAP: the guest ARPs for `hostIp` from `ip`, then pings it).
 */
export type PeerMode = { kind: 'none' } | { kind: 'echo' } | { kind: 'ping'; ip: string; hostIp: string };

const PING_ID = 0x4d58;
const PEER_WINDOW = 4;
const pingPayload = (guest: number, seq: number): Uint8Array => Uint8Array.from({ length: 56 }, (_, i) => (guest * 17 + seq * 5 + i) & 0xff);

/** What every guest has sent to whom: expected[dst][src] frames, echoes[src] peer answers. */
export class Ledger {
  readonly expected: number[][];
  readonly echoes: number[];
  constructor(readonly guests: number) {
    this.expected = Array.from({ length: guests }, () => new Array<number>(guests).fill(0));
    this.echoes = new Array<number>(guests).fill(0);
  }
  expectedFor(i: number): number {
    return this.expected[i].reduce((a, b) => a + b, 0) + this.echoes[i];
  }
}

export interface NicGuestProgress {
  guest: string;
  sent: number;
  received: number;
  bytes: number;
  errors: number;
  phase: 'starting' | 'running' | 'draining' | 'verified' | 'FAILED';
}

export class NicDemoGuest {
  readonly progress: NicGuestProgress;
  private seq = 0;
  private readonly lastSeq = new Map<number, number>();
  corrupt = 0;
  misaddressed = 0;
  outOfOrder = 0;
  received = 0;
  /** Answers from the outside peer (echoes or ping replies) read so far. */
  answers = 0;
  /** Frames of the host's own (ARP) read in ping mode: neither errors nor expected. */
  hostFrames = 0;
  private hostMac: Uint8Array | null = null;
  private pingSeq = 0;
  private readonly mac: Uint8Array;

  constructor(
    readonly name: string,
    readonly index: number,
    readonly driver: Ne2kDriver,
    private readonly ledger: Ledger,
    private readonly peer: PeerMode,
    /** Broadcast every fourth round (off with a slow physical card: broadcasts also go to the wire). */
    private readonly broadcasts = true,
  ) {
    this.mac = guestMac(index);
    this.progress = { guest: name, sent: 0, received: 0, bytes: 0, errors: 0, phase: 'starting' };
  }

  async start(): Promise<void> {
    const mac = await this.driver.probe();
    if (mac.some((b, i) => b !== this.mac[i])) throw new Error(`${this.name}: its PROM holds ${[...mac]}, not its granted MAC`);
    await this.driver.init(mac);
    if (this.peer.kind === 'ping') await this.resolveHost(this.peer);
    this.progress.phase = 'running';
  }

  /** ARP for the host until it answers (its reply is not counted as demo traffic). */
  private async resolveHost(p: { ip: string; hostIp: string }): Promise<void> {
    const end = Date.now() + 5000;
    while (!this.hostMac && Date.now() < end) {
      await this.driver.send(arpRequest(this.mac, p.ip, p.hostIp));
      const until = Date.now() + 200;
      while (!this.hostMac && Date.now() < until) {
        for (const r of await this.driver.receive()) this.hostMac ??= arpReplyFor(r.frame, p.hostIp);
        await new Promise((res) => setTimeout(res, 5));
      }
    }
    if (!this.hostMac) throw new Error(`${this.name}: no ARP answer from ${p.hostIp}`);
  }

  /** Send and receive until `until()` says stop. */
  async run(until: () => boolean): Promise<void> {
    const n = this.ledger.guests;
    for (let round = 0; !until(); round++) {
      const seq = this.seq++;
      const len = 46 + ((seq * 37 + this.index * 11) % 450);
      if (n > 1) {
        const dst = (this.index + 1 + (seq % (n - 1))) % n;
        await this.send(demoFrame(guestMac(dst), this.mac, this.index, 'unicast', seq, len));
        this.ledger.expected[dst][this.index]++;
      }
      if (this.broadcasts && seq % 4 === 3) {
        await this.send(demoFrame(BROADCAST_MAC, this.mac, this.index, 'broadcast', this.seq++, len));
        for (let j = 0; j < n; j++) if (j !== this.index) this.ledger.expected[j][this.index]++;
      }
      // At most PEER_WINDOW frames to the peer unanswered: the physical card's ring (QEMU's drops
      // silently when full) is drained at the speed of the wire behind it, not of the guests.
      const peerRoom = this.ledger.echoes[this.index] - this.answers < PEER_WINDOW;
      if (this.peer.kind === 'echo' && seq % 2 === 0 && peerRoom) {
        await this.send(demoFrame(PEER_MAC, this.mac, this.index, 'peer', this.seq++, len));
        this.ledger.echoes[this.index]++;
      }
      if (this.peer.kind === 'ping' && seq % 2 === 0 && this.hostMac && peerRoom) {
        const n = this.pingSeq++ & 0xffff;
        await this.send(icmpEcho(this.mac, this.hostMac, this.peer.ip, this.peer.hostIp, PING_ID + this.index, n, pingPayload(this.index, n)));
        this.ledger.echoes[this.index]++;
      }
      await this.drain();
      // Let sockets and timers run (the udp peer's echoes, the live view).
      if (round % 8 === 7) await yieldToLoop();
    }
  }

  /** After every guest stopped sending: read until all expected frames are in, dropped, or `ms` passed. */
  async finish(droppedForMe: () => number, ms: number, txDropped: () => number = () => 0): Promise<boolean> {
    this.progress.phase = 'draining';
    const end = Date.now() + ms;
    for (;;) {
      await this.drain();
      if (this.received + droppedForMe() + txDropped() >= this.ledger.expectedFor(this.index) || Date.now() >= end) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    // A frame for the peer the physical card could not take gets no echo (only peer frames go to the wire without broadcasts).
    const missing = this.ledger.expectedFor(this.index) - this.received - (this.broadcasts ? 0 : txDropped());
    // Every missing frame must be one this guest's card counted as dropped (its ring was full);
    // that count may be larger: in ping mode it also holds the host's frames (ARP, echo replies),
    // which no ledger expects. More frames than were sent is an error too.
    const unaccounted = missing < 0 ? -missing : Math.max(0, missing - droppedForMe());
    this.progress.errors = this.corrupt + this.misaddressed + this.outOfOrder + unaccounted + this.driver.rxErrors;
    const ok = this.progress.errors === 0;
    this.progress.phase = ok ? 'verified' : 'FAILED';
    return ok;
  }

  /** An echo reply to this guest's ping, checked against what was sent. */
  private pingReply(f: Uint8Array): boolean {
    if (f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 1) return false;
    const seq = (f[40] << 8) | f[41];
    const payload = echoReplyPayload(f, PING_ID + this.index, seq);
    if (!payload) return false;
    const want = pingPayload(this.index, seq);
    if (payload.length !== want.length || payload.some((b, i) => b !== want[i])) this.corrupt++;
    this.answers++;
    const last = this.lastSeq.get(2000) ?? -1;
    if (seq <= last) this.outOfOrder++;
    this.lastSeq.set(2000, seq);
    return true;
  }

  private async send(frame: Uint8Array): Promise<void> {
    const { isr } = await this.driver.send(frame);
    if (!(isr & 0x02)) this.progress.errors++; // no PTX
    this.progress.sent++;
    this.progress.bytes += frame.length;
  }

  private async drain(): Promise<void> {
    for (const r of await this.driver.receive()) {
      this.received++;
      this.progress.received++;
      this.progress.bytes += r.frame.length;
      const d = decodeDemoFrame(r.frame);
      if (!d && this.peer.kind === 'ping') {
        if (this.pingReply(r.frame)) continue;
        if (r.frame[12] === 0x08 && r.frame[13] === 0x06) {
          this.hostFrames++; // the host's ARP: not demo traffic
          this.received--;
          continue;
        }
      }
      if (!d) {
        this.corrupt++;
        continue;
      }
      const toMe = r.frame.subarray(0, 6).every((b, i) => b === this.mac[i]);
      const toAll = r.frame.subarray(0, 6).every((b) => b === 0xff);
      if ((d.kind === 'unicast' || d.kind === 'echo') !== toMe || (d.kind === 'broadcast') !== toAll || (d.kind === 'echo' && d.src !== this.index) || d.kind === 'peer') {
        this.misaddressed++;
        continue;
      }
      if (d.kind === 'echo') this.answers++;
      const key = d.kind === 'echo' ? 1000 : d.src;
      const last = this.lastSeq.get(key) ?? -1;
      if (d.seq <= last) this.outOfOrder++;
      this.lastSeq.set(key, d.seq);
    }
    this.progress.errors = this.corrupt + this.misaddressed + this.outOfOrder;
  }
}
