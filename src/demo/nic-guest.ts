// One scripted NE2000 guest of the NIC demo: probes and initialises its card as Linux does
// (src/guests/ne2k-driver.ts), then sends frames to the other guests in turn, a broadcast
// every fourth round and, with an outside peer, a frame to it (which it echoes), draining its
// ring each round and checking every frame it reads: intact, addressed to it, in order.

import { Ne2kDriver } from '../guests/ne2k-driver.ts';
import { yieldToLoop } from '../guests/port.ts';
import { BROADCAST_MAC, decodeDemoFrame, demoFrame, guestMac, PEER_MAC } from './nic-traffic.ts';

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
  private readonly mac: Uint8Array;

  constructor(
    readonly name: string,
    readonly index: number,
    readonly driver: Ne2kDriver,
    private readonly ledger: Ledger,
    private readonly withPeer: boolean,
  ) {
    this.mac = guestMac(index);
    this.progress = { guest: name, sent: 0, received: 0, bytes: 0, errors: 0, phase: 'starting' };
  }

  async start(): Promise<void> {
    const mac = await this.driver.probe();
    if (mac.some((b, i) => b !== this.mac[i])) throw new Error(`${this.name}: its PROM holds ${[...mac]}, not its granted MAC`);
    await this.driver.init(mac);
    this.progress.phase = 'running';
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
      if (seq % 4 === 3) {
        await this.send(demoFrame(BROADCAST_MAC, this.mac, this.index, 'broadcast', this.seq++, len));
        for (let j = 0; j < n; j++) if (j !== this.index) this.ledger.expected[j][this.index]++;
      }
      if (this.withPeer && seq % 2 === 0) {
        await this.send(demoFrame(PEER_MAC, this.mac, this.index, 'peer', this.seq++, len));
        this.ledger.echoes[this.index]++;
      }
      await this.drain();
      // Let sockets and timers run (the udp peer's echoes, the live view).
      if (round % 8 === 7) await yieldToLoop();
    }
  }

  /** After every guest stopped sending: read until all expected frames are in, dropped, or `ms` passed. */
  async finish(droppedForMe: () => number, ms: number): Promise<boolean> {
    this.progress.phase = 'draining';
    const end = Date.now() + ms;
    for (;;) {
      await this.drain();
      if (this.received + droppedForMe() >= this.ledger.expectedFor(this.index) || Date.now() >= end) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    const unaccounted = this.ledger.expectedFor(this.index) - this.received - droppedForMe();
    this.progress.errors = this.corrupt + this.misaddressed + this.outOfOrder + Math.abs(unaccounted) + this.driver.rxErrors;
    const ok = this.progress.errors === 0;
    this.progress.phase = ok ? 'verified' : 'FAILED';
    return ok;
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
      const key = d.kind === 'echo' ? 1000 : d.src;
      const last = this.lastSeq.get(key) ?? -1;
      if (d.seq <= last) this.outOfOrder++;
      this.lastSeq.set(key, d.seq);
    }
    this.progress.errors = this.corrupt + this.misaddressed + this.outOfOrder;
  }
}
