// The supervisor's side of the channel: listens on a Unix socket or TCP, runs the
// per-connection protocol (hello first, then acc/dmad/dmak/bye) and hands accesses to a
// ChannelHandler. A protocol error sends `err`, closes that connection only, is counted
// and logged. A reply for a peer that went away is dropped, never thrown.

import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import type { Access, Reply } from '../access.ts';
import { type Logger, silentLogger } from '../log.ts';
import { Counters } from '../metrics.ts';
import { FrameDecoder, encodeFrame } from './codec.ts';
import { HelloGate } from './admission.ts';
import { type ChannelLimits, DEFAULT_LIMITS, FRAMES_PER_TURN, PeerFlow } from './flow.ts';
import { LogLimiter } from '../log-limit.ts';
import {
  type DmarMsg,
  type DmawMsg,
  type ErrorCode,
  type HelloMsg,
  MAX_FRAME,
  MAX_HELLO_FRAME,
  MAX_STRING_BYTES,
  type PeerMessage,
  PROTOCOL_VERSION,
  ProtocolError,
  type SupervisorMessage,
  accToAccess,
  replyToRep,
  validatePeerMessage,
} from './messages.ts';
import { AccessSlot, SlotError, SlotPoller } from './slot.ts';
import { type OpenedPeerFd, type PeerIdentity, openPeerFd, peerIdentity } from './peer-cred.ts';

export type CloseReason = 'bye' | 'crash' | 'disconnect';

/** `bye` reasons that report a crash of the guest, not an orderly end (PROTOCOL.md). */
export const CRASH_BYE_REASONS: ReadonlySet<string> = new Set(['shutdown', 'internal-error', 'host-error', 'crash', 'fault']);

export type Endpoint = { path: string } | { host?: string; port: number };

/** What the handler returns for an accepted hello. */
export interface ChannelSession {
  /** IRQ lines granted to the guest (sent in `welcome`). */
  irqs: number[];
  /** Called right after `welcome` is sent: virtual IRQs may flow from here on. */
  started?(): void;
  access(acc: Access): Reply | Promise<Reply>;
  /**
   * The connection ended: an orderly bye, a bye whose reason says the peer crashed
   * (CRASH_BYE_REASONS, e.g. a KVM runner whose guest triple-faulted), or a disconnect.
   * Called once.
   */
  close(reason: CloseReason): void;
}

export interface ChannelHandler {
  /** Accept a hello (throw ProtocolError to refuse, e.g. unknown-guest). */
  hello(msg: HelloMsg, conn: PeerConnection): ChannelSession | Promise<ChannelSession>;
}

let nextConnection = 1;
const EMPTY = Buffer.alloc(0);
/** The most data one dmar/dmaw carries: its answer or itself must fit a frame (PROTOCOL.md "Framing"). */
const DMA_MESSAGE_MAX = MAX_STRING_BYTES;

/** One peer connection. */
export class PeerConnection {
  readonly label: string;
  guest: string | null = null;
  private session: ChannelSession | null = null;
  private helloPending = false;
  /** Messages that arrived while the hello was being accepted: handled after `welcome`. */
  private early: PeerMessage[] = [];
  private closed = false;
  // The first frame is the hello: held to its own, smaller, bound (flow.ts, PROTOCOL.md "Limits").
  private readonly decoder = new FrameDecoder(validatePeerMessage, MAX_HELLO_FRAME);
  private readonly flow: PeerFlow;
  private dmaSeq = 1;
  private readonly dmaWaiters = new Map<number, (m: PeerMessage) => void>();
  /** Frames written to the socket: the access slot's `sent` (slot.ts). */
  private framesSent = 0;
  private slot: AccessSlot | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly server: ChannelServer,
  ) {
    this.label = `conn#${nextConnection++}`;
    socket.setNoDelay?.(true);
    this.flow = new PeerFlow(socket, this.decoder, server.limits, {
      resume: () => this.onData(EMPTY),
      expire: (e) => this.drop(e),
      changed: (reading) => {
        // A peer we do not read is not served through its slot either (its frames would pile up).
        if (!this.slot) return;
        const held = this.slot.held;
        this.slot.held = !reading;
        if (reading && held) this.server.kickSlots(); // a request may have been posted meanwhile
      },
      count: (name) => this.server.counters.inc(name),
    });
    socket.on('data', (chunk) => this.onData(chunk));
    // Errors (EPIPE, ECONNRESET) end the connection; 'close' follows.
    socket.on('error', (e) => this.server.log.debug({ conn: this.label, guest: this.guest, err: e.message }, 'socket error'));
    socket.on('close', () => this.onClose());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Reading starts (admission.ts): the connection was accepted paused. */
  startReading(): void {
    if (!this.closed) this.socket.resume();
  }

  /** The hello has been received (it may still be being accepted). */
  get helloArrived(): boolean {
    return this.flow.helloArrived;
  }

  private identity: PeerIdentity | undefined;

  /** Who the peer is, as the kernel says (SO_PEERCRED, peer-cred.ts); over TCP, why nobody can tell. */
  get credentials(): PeerIdentity {
    return (this.identity ??= peerIdentity(this.socket));
  }

  /** The peer's descriptor `fd`, opened for this process (a memfd only, peer-cred.ts); throws with the reason. */
  openPeerFd(fd: number): OpenedPeerFd {
    return openPeerFd(this.socket, fd);
  }

  /** Send a message; dropped (and counted) when the peer is gone. */
  send(msg: SupervisorMessage): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) {
      this.server.counters.inc('droppedToClosed');
      return;
    }
    let frame: Buffer;
    try {
      frame = encodeFrame(msg);
    } catch (e) {
      // A router or device returned something unencodable: a host bug, not the peer's.
      this.server.counters.inc('encodeErrors');
      this.server.log.error({ conn: this.label, guest: this.guest, t: msg.t, err: e }, 'cannot encode a message');
      if (msg.t !== 'rep') return;
      frame = encodeFrame({ t: 'rep', id: msg.id, v: 0xffff_ffff, e: `internal error: ${(e as Error).message}` });
    }
    // Counted before the write: a peer that sees the count reads the frame, never more.
    this.framesSent++;
    this.slot?.noteSent(this.framesSent);
    this.socket.write(frame);
    this.flow.wrote();
  }

  sendIrq(line: number, level: boolean): void {
    this.send({ t: 'irq', line, level: level ? 1 : 0 });
  }

  sendReset(dev: string, reason: string): void {
    this.send({ t: 'reset', dev, reason });
  }

  /** Read the peer's memory through `dmar`; null when refused or the peer is gone. */
  async dmaRead(addr: number, len: number): Promise<Uint8Array | null> {
    if (len > DMA_MESSAGE_MAX) {
      const out = new Uint8Array(len);
      for (let off = 0; off < len; off += DMA_MESSAGE_MAX) {
        const part = await this.dmaRead(addr + off, Math.min(DMA_MESSAGE_MAX, len - off));
        if (!part) return null;
        out.set(part, off);
      }
      return out;
    }
    return this.dmaRequest({ t: 'dmar', id: 0, a: addr, n: len }, (m) => (m.t === 'dmad' && m.b && m.b.length === len ? m.b : null), null);
  }

  /** Write the peer's memory through `dmaw`; false when refused or the peer is gone. */
  async dmaWrite(addr: number, data: Uint8Array): Promise<boolean> {
    if (data.length > DMA_MESSAGE_MAX) {
      for (let off = 0; off < data.length; off += DMA_MESSAGE_MAX) {
        if (!(await this.dmaWrite(addr + off, data.subarray(off, off + DMA_MESSAGE_MAX)))) return false;
      }
      return true;
    }
    return this.dmaRequest({ t: 'dmaw', id: 0, a: addr, b: data }, (m) => m.t === 'dmak' && m.e === undefined, false);
  }

  /** Protocol error: send `err`, close, count, log. */
  fail(e: ProtocolError): void {
    if (this.closed) return;
    this.server.protocolErrors.inc(e.code);
    // Counted always; logged at most so often per guest and code (a flood must not become a log flood).
    const { log, leftOut } = this.server.logLimit.take(`${this.guest ?? ''}\0${e.code}`);
    if (log) this.server.log.warn({ conn: this.label, guest: this.guest, code: e.code, ...(leftOut ? { leftOut } : {}) }, `protocol error: ${e.message}`);
    this.send({ t: 'err', code: e.code, msg: e.detail });
    this.end();
  }

  /** Orderly close from our side (`bye` first). */
  bye(reason?: string): void {
    if (this.closed) return;
    this.send(reason ? { t: 'bye', reason } : { t: 'bye' });
    this.end();
  }

  private dmaRequest<T>(msg: DmarMsg | DmawMsg, map: (m: PeerMessage) => T, gone: T): Promise<T> {
    if (this.closed) return Promise.resolve(gone);
    const id = this.dmaSeq++;
    msg.id = id;
    return new Promise<T>((resolve) => {
      this.dmaWaiters.set(id, (m) => resolve(m.t === 'bye' ? gone : map(m)));
      this.send(msg);
    });
  }

  /**
   * A protocol error after which nothing is owed to the peer (no hello in time, a frame not
   * finished in time, replies it does not read, evicted while waiting for its hello): `err`
   * is written (it usually leaves at once) and the socket destroyed now, not a second later,
   * so that a flood of such connections holds nothing.
   */
  drop(e: ProtocolError): void {
    this.fail(e);
    this.socket.destroy();
  }

  private end(): void {
    this.closed = true;
    this.socket.end();
    // Do not wait for the peer to read everything: a dead peer would keep us open.
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.finish('disconnect');
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let frames = 0;
    try {
      for (const m of this.decoder.feed(chunk)) {
        // Enough for this turn: the decoder keeps the rest, the other peers are read first.
        if (++frames === FRAMES_PER_TURN) this.flow.yieldTurn();
        if (m.t === 'hello' && !this.session && !this.helloPending) {
          // Frames after the hello may be as large as any; nothing more is read until it is accepted.
          this.decoder.limit(MAX_FRAME);
          this.flow.gotHello();
        }
        this.onMessage(m);
        if (this.closed) return;
      }
      this.flow.afterData();
    } catch (e) {
      if (e instanceof ProtocolError) this.fail(e);
      else {
        this.server.log.error({ conn: this.label, guest: this.guest, err: e }, 'internal error while handling a frame');
        this.fail(new ProtocolError('malformed', `internal error: ${(e as Error).message}`));
      }
    }
  }

  private onMessage(m: PeerMessage): void {
    if (this.helloPending && m.t !== 'hello') {
      // A peer may pipeline its first accesses behind the hello.
      this.early.push(m);
      return;
    }
    switch (m.t) {
      case 'acc': {
        const id = m.id;
        this.serve(accToAccess(m), id, (rep) => {
          this.send(replyToRep(id, rep));
          // A peer with a slot sends `acc` while we do not poll: poll now, so that its
          // next access (which usually follows at once) takes the slot.
          if (this.slot && !this.slot.peerCalm) this.server.kickSlots();
        });
        if (this.slot) {
          this.server.counters.inc('slotPeerFrames');
          this.slot.touch();
        }
        return;
      }
      case 'ring':
        this.server.counters.inc('slotRings');
        // A doorbell with nothing posted behind it (a stray, or a flood) costs nothing more.
        if (this.slot?.hasRequest) this.server.kickSlots();
        return;
      case 'hello':
        if (this.session || this.helloPending) throw new ProtocolError('malformed', 'second hello');
        if (m.v !== PROTOCOL_VERSION) throw new ProtocolError('version', `protocol version ${m.v} is not supported; this supervisor speaks ${PROTOCOL_VERSION}`);
        this.helloPending = true;
        this.guest = m.guest; // the name it claims: logs of its errors name it even before the welcome
        void this.accept(m);
        return;
      case 'dmad':
      case 'dmak': {
        const id = typeof m.id === 'number' ? m.id : -1;
        const waiter = this.dmaWaiters.get(id);
        if (!waiter) throw new ProtocolError('malformed', `${m.t} for unknown request id ${m.id}`);
        this.dmaWaiters.delete(id);
        waiter(m);
        return;
      }
      case 'bye':
        this.server.log.info({ conn: this.label, guest: this.guest, reason: m.reason }, 'peer said bye');
        this.closed = true;
        this.socket.end();
        this.finish(typeof m.reason === 'string' && CRASH_BYE_REASONS.has(m.reason) ? 'crash' : 'bye');
        return;
      case 'err':
        this.server.log.warn({ conn: this.label, guest: this.guest, code: m.code }, `peer reported an error: ${m.msg}`);
        this.closed = true;
        this.socket.destroy();
        this.finish('disconnect');
        return;
    }
  }

  /** One access, from an `acc` frame or the slot; `answer` is called once, now or later. */
  private serve(acc: Access, id: unknown, answer: (r: Reply) => void): void {
    if (!this.session) throw new ProtocolError('no-hello', 'access before hello');
    let r: Reply | Promise<Reply>;
    try {
      r = this.session.access(acc);
    } catch (e) {
      r = this.internalError(e, id);
    }
    if (r instanceof Promise) {
      // Answered later (the MUX stalls the guest): a bounded number at once per peer (flow.ts).
      this.flow.accessStarted();
      const done = (rep: Reply) => {
        answer(rep);
        this.flow.accessDone();
      };
      r.then(done, (e) => done(this.internalError(e, id)));
    } else answer(r);
  }

  /** Maps the hello's access slot; null (socket path) when it cannot be used. */
  private openSlot(m: HelloMsg): AccessSlot | null {
    if (!m.slot || !this.server.options.slot) return null;
    let seq = 0;
    try {
      if (!m.caps.includes('slot')) throw new Error('hello carries a slot but not the capability "slot"');
      // Shared memory is for a peer on this machine: over TCP there is no peer process to ask.
      if (this.socket.remoteAddress !== undefined) throw new Error('a TCP peer cannot share memory');
      const { buf, shm } = AccessSlot.open(this.socket, m.slot.fd, m.slot.size);
      return new AccessSlot(buf, shm, (acc, answer) => {
        this.server.counters.inc('slotAccesses');
        let now = true;
        this.serve(acc, `slot#${++seq}`, (r) => {
          answer(r);
          if (!now) this.server.kickSlots(); // an answer after a stall: the peer's next access comes soon
        });
        now = false;
      });
    } catch (e) {
      this.server.counters.inc('slotRefused');
      this.server.log.warn({ conn: this.label, guest: m.guest, fd: m.slot.fd, err: (e as Error).message }, 'access slot refused: accesses go over the socket');
      return null;
    }
  }

  private async accept(m: HelloMsg): Promise<void> {
    try {
      const session = await this.server.handler.hello(m, this);
      if (this.closed) {
        // The peer left while the hello was being accepted.
        session.close('disconnect');
        return;
      }
      this.session = session;
      this.guest = m.guest;
      this.helloPending = false;
      this.slot = this.openSlot(m);
      this.send({ t: 'welcome', v: PROTOCOL_VERSION, guest: m.guest, irqs: session.irqs, ...(this.slot ? { slot: 1 as const } : {}) });
      if (this.slot) {
        this.server.counters.inc('slotSessions');
        this.server.addSlot(this.slot, this);
      }
      session.started?.();
      this.server.log.info({ conn: this.label, guest: m.guest, caps: m.caps }, 'guest connected');
      const early = this.early;
      this.early = [];
      for (const e of early) {
        if (this.closed) return;
        this.onMessage(e);
      }
      this.server.gate.done(this);
      this.flow.welcomed(); // reads (and decodes what came behind the hello) again
    } catch (e) {
      this.early = [];
      if (e instanceof ProtocolError) this.fail(e);
      else {
        this.server.log.error({ conn: this.label, guest: m.guest, err: e }, 'hello failed');
        this.fail(new ProtocolError('refused', (e as Error).message));
      }
    }
  }

  private internalError(e: unknown, id: unknown): Reply {
    this.server.counters.inc('internalErrors');
    this.server.log.error({ conn: this.label, guest: this.guest, id: String(id), err: e }, 'access failed inside the supervisor');
    return { value: 0xffff_ffff, error: `internal error: ${(e as Error)?.message ?? String(e)}` };
  }

  private onClose(): void {
    if (!this.closed) {
      this.closed = true;
      this.server.log.info({ conn: this.label, guest: this.guest }, 'peer disconnected');
    }
    this.finish('disconnect');
  }

  private finished = false;
  private finish(reason: CloseReason): void {
    if (this.finished) return;
    this.finished = true;
    this.flow.dispose();
    this.server.gate.done(this);
    this.server.connections.delete(this);
    if (this.slot) this.server.removeSlot(this.slot);
    this.slot?.close();
    for (const w of this.dmaWaiters.values()) w({ t: 'bye' });
    this.dmaWaiters.clear();
    const s = this.session;
    this.session = null;
    s?.close(reason);
  }
}

export interface ChannelServerOptions {
  /** Accept a peer's shared-memory access slot (default true). */
  slot?: boolean;
  /** How long the supervisor keeps polling the slots after an access, in µs (default 100). */
  slotPollUs?: number;
  /** Bounds on what one peer may make the supervisor hold (flow.ts); tests shorten the deadlines. */
  limits?: Partial<ChannelLimits>;
}

export class ChannelServer {
  readonly connections = new Set<PeerConnection>();
  readonly protocolErrors = new Counters();
  readonly counters = new Counters();
  readonly options: ChannelServerOptions;
  readonly limits: ChannelLimits;
  /** Connections not welcomed yet (admission.ts). */
  readonly gate: HelloGate<PeerConnection>;
  /** Log lines a peer can cause at will are rate-limited (counted always). */
  readonly logLimit = new LogLimiter();
  private server: Server | null = null;
  private unixPath: string | null = null;
  private readonly poller: SlotPoller;
  private readonly slotOwners = new Map<AccessSlot, PeerConnection>();

  constructor(
    readonly handler: ChannelHandler,
    readonly log: Logger = silentLogger,
    options: ChannelServerOptions = {},
  ) {
    this.options = { slot: true, ...options };
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.gate = new HelloGate<PeerConnection>({ maxReading: this.limits.maxHelloReaders, maxQueued: this.limits.maxHelloQueue, graceMs: this.limits.helloGraceMs }, {
      silent: (c) => !c.helloArrived,
      read: (c) => c.startReading(),
      evict: (c) => {
        this.counters.inc('helloEvicted');
        c.drop(new ProtocolError('timeout', `no hello within ${this.limits.helloGraceMs} ms while ${this.limits.maxHelloReaders} connections were read and more waited`));
      },
      refuse: (c) => {
        this.counters.inc('helloRefused');
        c.drop(new ProtocolError('refused', `${this.limits.maxHelloQueue} connections are already waiting for their hello`));
      },
    });
    this.poller = new SlotPoller(options.slotPollUs ?? 100);
  }

  /** A new connection (paused): admission.ts decides when it is read. */
  private accept(socket: Socket): void {
    const conn = new PeerConnection(socket, this);
    this.connections.add(conn);
    this.gate.admit(conn);
  }

  addSlot(s: AccessSlot, owner: PeerConnection): void {
    this.slotOwners.set(s, owner);
    this.poller.add(s);
  }

  removeSlot(s: AccessSlot): void {
    this.slotOwners.delete(s);
    this.poller.remove(s);
  }

  private kickQueued = false;

  /**
   * Polls the access slots soon (a doorbell rang, an answer was given, an `acc` of a slot
   * peer was served): once per event-loop turn however many asked, since a poll lasts
   * the window (slotPollUs) at least: a flood of frames must not hold the loop that long
   * per frame. Counted: `slotKicks`.
   */
  kickSlots(): void {
    if (this.kickQueued) return;
    this.kickQueued = true;
    // Awake from now: a peer's next access takes the slot, and the poll queued below
    // (later in this same turn) finds it, as a poll started here would.
    this.poller.awake();
    setImmediate(() => {
      this.kickQueued = false;
      this.counters.inc('slotKicks');
      this.poller.kick((s, e) => {
        const conn = this.slotOwners.get(s);
        if (!conn) return;
        if (e instanceof ProtocolError) conn.fail(e);
        else if (e instanceof SlotError) conn.fail(new ProtocolError('malformed', e.message));
        else conn.fail(new ProtocolError('malformed', `internal error: ${(e as Error).message}`));
      });
    });
  }

  /**
   * Listen. A Unix socket file nobody listens on (a crashed supervisor's) is replaced; one
   * another supervisor is listening on is an error. Resolves with the path or the TCP address.
   */
  async listen(endpoint: Endpoint): Promise<string | AddressInfo> {
    if ('path' in endpoint) await removeStaleSocket(endpoint.path);
    // Accepted paused: the gate reads a bounded number of connections not welcomed yet.
    const server = createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${'path' in endpoint ? endpoint.path : `${endpoint.host ?? '127.0.0.1'}:${endpoint.port}`}: ${e.message}`)));
      // A backlog for a burst of connects (the kernel caps it at net.core.somaxconn).
      const backlog = this.limits.backlog;
      if ('path' in endpoint) server.listen({ path: endpoint.path, backlog }, resolve);
      else server.listen({ port: endpoint.port, host: endpoint.host ?? '127.0.0.1', backlog }, resolve);
    });
    // A failed accept (EMFILE under a flood of connects) is counted and logged, never fatal.
    server.on('error', (e: NodeJS.ErrnoException) => {
      this.counters.inc('acceptErrors');
      const { log, leftOut } = this.logLimit.take(`\0accept`);
      if (log) this.log.warn({ err: e.message, code: e.code, ...(leftOut ? { leftOut } : {}) }, 'accepting a connection failed');
    });
    // Only a socket file we created is ours to unlink on close.
    if ('path' in endpoint) this.unixPath = endpoint.path;
    const addr = server.address();
    return typeof addr === 'string' || addr === null ? ('path' in endpoint ? endpoint.path : '') : addr;
  }

  /** Say bye to every peer and stop listening. */
  async close(): Promise<void> {
    this.gate.close();
    for (const c of [...this.connections]) c.bye('supervisor shutting down');
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.unixPath && existsSync(this.unixPath)) {
      try {
        unlinkSync(this.unixPath);
      } catch {
        // Already gone: nothing to clean.
      }
    }
  }
}

/** How long a connect to an existing socket file may take before we call it taken. */
const PROBE_TIMEOUT_MS = 1000;

/**
 * Unlink `path` when it is a socket file nobody listens on (connect: ECONNREFUSED, or ENOENT
 * when it vanished meanwhile). A socket something accepts on, or does not answer on in time,
 * belongs to another supervisor: an error, and the file is left alone. Anything that is not
 * a socket is left for listen() to refuse.
 */
async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path) || !lstatSync(path).isSocket()) return;
  const probe = await new Promise<'live' | 'stale' | Error>((resolve) => {
    const s = connect(path);
    const timer = setTimeout(() => {
      s.destroy();
      resolve('live');
    }, PROBE_TIMEOUT_MS);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('live');
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? 'stale' : e);
    });
  });
  if (probe === 'live') throw new Error(`another supervisor is listening on ${path}`);
  if (probe instanceof Error) throw new Error(`cannot listen on ${path}: cannot tell whether the existing socket is in use: ${probe.message}`);
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot listen on ${path}: cannot remove the stale socket: ${(e as Error).message}`);
  }
}

export type { ErrorCode };
