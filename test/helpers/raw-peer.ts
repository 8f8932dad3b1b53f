// A peer that writes whatever hello it is told to, frame by frame: for the tests of what a
// hostile peer can make the supervisor do (dma-path-attack, dma-memfd, peer-auth). Unlike
// PeerClient it never checks what it sends.

import { type Socket, connect } from 'node:net';
import { pack } from 'msgpackr';
import { FrameDecoder, encodeFrame, framePayload } from '../../src/channel/codec.ts';
import { validateSupervisorMessage } from '../../src/channel/messages.ts';

export type Msg = Record<string, unknown> & { t: string };

export class RawPeer {
  private readonly queue: Msg[] = [];
  private readonly waiters: ((m: Msg | null) => void)[] = [];
  private ended = false;
  private seq = 1;
  /** The irq line levels seen so far. */
  readonly levels = new Map<number, number>();

  private constructor(readonly socket: Socket) {
    const dec = new FrameDecoder(validateSupervisorMessage);
    socket.on('data', (d) => {
      for (const m of dec.push(d) as unknown as Msg[]) {
        if (m.t === 'irq') this.levels.set(m.line as number, m.level as number);
        const w = this.waiters.shift();
        if (w) w(m);
        else this.queue.push(m);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(null);
    });
  }

  static async connect(endpoint: string | { port: number }): Promise<RawPeer> {
    const s = typeof endpoint === 'string' ? connect(endpoint) : connect(endpoint.port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return new RawPeer(s);
  }

  /** Any map, packed by msgpackr itself: values the channel's encoder would refuse (-1, 1.5) go too. */
  send(m: Msg): void {
    this.socket.write(framePayload(pack(m)));
  }

  /** The next message from the supervisor (irq frames included), null once the connection closed. */
  next(): Promise<Msg | null> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The next message that is not an irq. */
  async nextReply(): Promise<Msg | null> {
    for (;;) {
      const m = await this.next();
      if (m === null || m.t !== 'irq') return m;
    }
  }

  /** Says `hello` (fields merged over a plain v1 hello) and resolves with `welcome` or `err`. */
  async hello(fields: Record<string, unknown>): Promise<Msg | null> {
    this.send({ t: 'hello', v: 1, caps: ['pio', 'irq', 'dma'], ...fields } as Msg);
    return this.nextReply();
  }

  /** One port access as an `acc` frame; resolves with its `rep`. */
  async pio(addr: number, dir: 'r' | 'w', value = 0, size = 4): Promise<Msg | null> {
    const id = this.seq++;
    this.send({ t: 'acc', id, sp: 'pio', a: addr, s: size, d: dir, ...(dir === 'w' ? { v: value } : {}) });
    return this.nextReply();
  }

  /** Waits until irq `line` is at `level` (the test's timeout bounds it). */
  async irq(line: number, level: number): Promise<void> {
    while (this.levels.get(line) !== level) {
      if (this.ended) throw new Error(`connection closed before irq ${line} went to ${level}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  async close(): Promise<void> {
    if (this.ended) return;
    this.socket.end(encodeFrame({ t: 'bye' }));
    await new Promise<void>((resolve) => (this.ended ? resolve() : this.socket.once('close', () => resolve())));
  }
}
