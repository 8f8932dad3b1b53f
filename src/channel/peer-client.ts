// The peer side of the channel, for tests and TypeScript guests: connect, hello, then
// `access()` per trapped access; IRQ and reset events; dmar/dmaw served from a buffer.

import { type Socket, connect as netConnect } from 'node:net';
import type { Access, Reply } from '../access.ts';
import { FrameDecoder, encodeFrame } from './codec.ts';
import {
  type ErrMsg,
  type HelloMsg,
  type PeerMessage,
  PROTOCOL_VERSION,
  ProtocolError,
  type SupervisorMessage,
  accessToAcc,
  repToReply,
  validateSupervisorMessage,
} from './messages.ts';
import type { Endpoint } from './server.ts';

export interface PeerClientOptions {
  guest: string;
  caps?: string[];
  /** DMA memory served through dmar/dmaw: bus address base+x is bytes[x]. */
  memory?: { base: number; bytes: Uint8Array };
  /**
   * Or shared memory: a memfd of this process (peer-cred.ts memfdCreate, sealed at least
   * against shrinking) offered by its descriptor number (hello's dma.fd, PROTOCOL.md "DMA memory").
   */
  dmaFd?: { fd: number; base: number; size: number };
  /** The credential of the guest (hello's token): a one-time token or its auth.tokenFile's content. */
  token?: string;
  /** Protocol version to announce (tests of version mismatch). */
  version?: number;
}

/** The connection ended while an access was waiting for its reply. */
export class PeerClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerClosedError';
  }
}

export class PeerClient {
  irqs: number[] = [];
  /** The `err` the supervisor sent, if any. */
  lastError: ErrMsg | null = null;
  /** Resolves when the connection is closed (by either side). */
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder(validateSupervisorMessage);
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void; size: Access['size'] }>();
  private readonly irqCbs = new Set<(line: number, level: boolean) => void>();
  private readonly resetCbs = new Set<(dev: string, reason: string) => void>();
  private readonly levels = new Map<number, boolean>();
  private seq = 1;
  private isClosed = false;
  private welcome: { resolve: () => void; reject: (e: Error) => void } | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly options: PeerClientOptions,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', () => undefined); // 'close' follows and fails what is pending
    socket.on('close', () => this.onClose());
  }

  /** Connect and say hello; resolves after `welcome`, rejects with the supervisor's `err`. */
  static async connect(endpoint: Endpoint | string, options: PeerClientOptions): Promise<PeerClient> {
    const ep = typeof endpoint === 'string' ? { path: endpoint } : endpoint;
    const socket = 'path' in ep ? netConnect(ep.path) : netConnect(ep.port, ep.host ?? '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new PeerClient(socket, options);
    await client.hello();
    return client;
  }

  /** Send one access; resolves with the reply (which may come much later: the guest is stalled). */
  access(acc: Access): Promise<Reply> {
    if (this.isClosed) return Promise.reject(new PeerClosedError(`${this.options.guest}: connection closed`));
    const id = this.seq++;
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, size: acc.size });
      this.send(accessToAcc(id, acc));
    });
  }

  onIrq(cb: (line: number, level: boolean) => void): () => void {
    this.irqCbs.add(cb);
    return () => this.irqCbs.delete(cb);
  }

  onReset(cb: (dev: string, reason: string) => void): () => void {
    this.resetCbs.add(cb);
    return () => this.resetCbs.delete(cb);
  }

  irqLevel(line: number): boolean {
    return this.levels.get(line) ?? false;
  }

  /** Orderly close. */
  async bye(reason?: string): Promise<void> {
    if (!this.isClosed) {
      this.send(reason ? { t: 'bye', reason } : { t: 'bye' });
      this.socket.end();
    }
    await this.closed;
  }

  /** Drop the connection without a word (a crashing guest). */
  destroy(): void {
    this.socket.destroy();
  }

  /** Send any message or raw bytes: for protocol tests. */
  send(msg: PeerMessage | Record<string, unknown>): void {
    if (!this.socket.destroyed) this.socket.write(encodeFrame(msg as PeerMessage));
  }

  sendRaw(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  private hello(): Promise<void> {
    const o = this.options;
    const caps = o.caps ?? ['pio', 'mmio', 'irq', 'string', ...(o.memory || o.dmaFd ? ['dma'] : [])];
    const msg: HelloMsg = { t: 'hello', v: o.version ?? PROTOCOL_VERSION, guest: o.guest, caps };
    if (o.dmaFd) msg.dma = { fd: o.dmaFd.fd, base: o.dmaFd.base, size: o.dmaFd.size };
    else if (o.memory) msg.dma = { base: o.memory.base, size: o.memory.bytes.length };
    if (o.token !== undefined) msg.token = o.token;
    return new Promise<void>((resolve, reject) => {
      this.welcome = { resolve, reject };
      this.send(msg);
    });
  }

  private onData(chunk: Buffer): void {
    try {
      for (const m of this.decoder.feed(chunk)) this.onMessage(m);
    } catch (e) {
      const err = e instanceof ProtocolError ? e : new ProtocolError('malformed', String(e));
      this.send({ t: 'err', code: err.code, msg: err.message });
      this.failAll(err);
      this.socket.destroy();
    }
  }

  private onMessage(m: SupervisorMessage): void {
    switch (m.t) {
      case 'welcome':
        this.irqs = m.irqs;
        this.welcome?.resolve();
        this.welcome = null;
        return;
      case 'rep': {
        const id = typeof m.id === 'number' ? m.id : -1;
        const p = this.pending.get(id);
        if (!p) throw new ProtocolError('malformed', `rep for unknown id ${m.id}`);
        this.pending.delete(id);
        p.resolve(repToReply(m, p.size));
        return;
      }
      case 'irq':
        this.levels.set(m.line, m.level === 1);
        for (const cb of this.irqCbs) cb(m.line, m.level === 1);
        return;
      case 'dmar': {
        const mem = this.options.memory;
        const off = mem ? m.a - mem.base : -1;
        if (mem && off >= 0 && off + m.n <= mem.bytes.length) this.send({ t: 'dmad', id: m.id, b: mem.bytes.slice(off, off + m.n) });
        else this.send({ t: 'dmad', id: m.id, e: 'outside the DMA window' });
        return;
      }
      case 'dmaw': {
        const mem = this.options.memory;
        const off = mem ? m.a - mem.base : -1;
        if (mem && off >= 0 && off + m.b.length <= mem.bytes.length) {
          mem.bytes.set(m.b, off);
          this.send({ t: 'dmak', id: m.id });
        } else this.send({ t: 'dmak', id: m.id, e: 'outside the DMA window' });
        return;
      }
      case 'reset':
        for (const cb of this.resetCbs) cb(m.dev, m.reason);
        return;
      case 'err':
        this.lastError = m;
        this.failAll(new ProtocolError(m.code as ProtocolError['code'], m.msg));
        return;
      case 'bye':
        this.socket.end();
        return;
    }
  }

  private failAll(e: Error): void {
    this.welcome?.reject(e);
    this.welcome = null;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private onClose(): void {
    this.isClosed = true;
    this.failAll(new PeerClosedError(`${this.options.guest}: connection closed${this.lastError ? ` after err ${this.lastError.code}: ${this.lastError.msg}` : ''}`));
  }
}
