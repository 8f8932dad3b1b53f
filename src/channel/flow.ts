// Flow control of one peer connection: what bounds the memory and time a peer can make the
// supervisor spend, however it sends and however slowly it reads (PROTOCOL.md "Limits").
//
//  - Reading stops (socket.pause(), and the decoder keeps the rest of the chunk it was
//    decoding) while the peer has more than `maxUnread` bytes of frames it has not read
//    (socket.writableLength: replies, irq, dma requests), while `maxInflight` of its
//    accesses are being served (stalled by a MUX, or in a device), or while its hello is
//    being accepted. It resumes on 'drain', on an answer, on the welcome. The kernel's socket
//    buffers hold what the peer sends meanwhile, and its writes block: a flood of requests
//    whose replies it does not read stops at the bound.
//  - A peer's frames are handled FRAMES_PER_TURN at a time per turn of the event loop, so the
//    other peers are read in between.
//  - A peer that owes more than hardUnread() (more than its accesses in flight can explain:
//    it reads nothing, while frames it did not ask for, such as irq, pile up) is closed.
//  - A frame that has started to arrive must be complete within `frameDeadlineMs` (counted
//    while the supervisor reads the peer), a hello must arrive within `helloDeadlineMs` of
//    the connect. Expiry is a `timeout` protocol error: that connection only is closed.

import type { Socket } from 'node:net';
import { MAX_FRAME, MAX_HELLO_FRAME, MAX_STRING_BYTES, ProtocolError } from './messages.ts';

export interface ChannelLimits {
  /** Bytes sent to a peer and not yet read by it above which the peer is not read (default 256 KiB). */
  maxUnread: number;
  /** Accesses of one peer served at once above which it is not read (default 8). */
  maxInflight: number;
  /** How long a frame that has started to arrive may take to be complete, ms (default 10 s). */
  frameDeadlineMs: number;
  /** How long a connection may take to send its hello, ms (default 10 s). */
  helloDeadlineMs: number;
  /** Connections not welcomed yet that are read at once (admission.ts; default 256). */
  maxHelloReaders: number;
  /** How long a connection being read may take to send its hello before a waiting one takes its place (ms; default 500). */
  helloGraceMs: number;
  /** Connections not welcomed yet that wait, paused, to be read; a connect beyond is refused (default 2048). */
  maxHelloQueue: number;
  /** Listen backlog (the kernel caps it at net.core.somaxconn; default 4096). */
  backlog: number;
}

export const DEFAULT_LIMITS: ChannelLimits = {
  maxUnread: 256 * 1024,
  maxInflight: 8,
  frameDeadlineMs: 10_000,
  helloDeadlineMs: 10_000,
  maxHelloReaders: 256,
  helloGraceMs: 500,
  maxHelloQueue: 2048,
  backlog: 4096,
};

/**
 * The most a reading peer can owe: `maxUnread`, then the answers of the accesses that were
 * in flight when reading stopped (one frame each), and 64 KiB of frames sent unasked.
 */
export function hardUnread(l: ChannelLimits): number {
  return l.maxUnread + l.maxInflight * (MAX_FRAME + 4) + 64 * 1024;
}

/** What one read of a socket hands over at most (libuv's read size). */
export const READ_CHUNK = 64 * 1024;
/** The objects of one connection (socket, decoder, flow, timers: about 8 KiB measured), with room. */
const CONNECTION_OBJECTS = 16 * 1024;
/** A welcomed guest's session besides (PCI view, grants, MUX context, counters), with room. */
const SESSION_OBJECTS = 48 * 1024;

/**
 * The most memory one connection can make the supervisor hold, by part (PROTOCOL.md "Limits"):
 * a welcomed guest's connection, a connection being read before its hello, one waiting
 * (paused) to be read. Garbage the JavaScript engine has not collected yet is not held and
 * not counted here (test/channel-flood.test.ts allows for it).
 */
export function memoryBound(l: ChannelLimits = DEFAULT_LIMITS): { guest: Record<string, number>; reading: Record<string, number>; waiting: Record<string, number> } {
  return {
    guest: {
      partialFrame: MAX_FRAME + 4,
      // The rest of a read chunk the decoder keeps when reading stops, and the stream's buffer
      // (its high-water mark, 16 KiB, and the chunk in hand when it paused).
      keptChunk: READ_CHUNK,
      streamBuffer: READ_CHUNK + 16 * 1024,
      unread: hardUnread(l),
      inflight: l.maxInflight * MAX_STRING_BYTES,
      slot: 8192,
      objects: CONNECTION_OBJECTS + SESSION_OBJECTS,
    },
    reading: { firstFrame: MAX_HELLO_FRAME + 4, readChunk: READ_CHUNK, objects: CONNECTION_OBJECTS },
    waiting: { objects: CONNECTION_OBJECTS },
  };
}

/** Sum of the parts. */
export const total = (parts: Record<string, number>): number => Object.values(parts).reduce((a, b) => a + b, 0);

/** Bytes the supervisor may hold for `guests` connected guests and any number of other connections. */
export function supervisorBound(guests: number, l: ChannelLimits = DEFAULT_LIMITS): number {
  const b = memoryBound(l);
  return guests * total(b.guest) + l.maxHelloReaders * total(b.reading) + l.maxHelloQueue * total(b.waiting);
}

export type StopReason = 'hello' | 'unread' | 'inflight' | 'turn';

/**
 * Frames of one peer handled in one turn of the event loop: then its reading yields until
 * the next turn, so a peer that sends many small frames (and reads its replies) cannot hold
 * the loop for the length of a large read while the other peers wait.
 */
export const FRAMES_PER_TURN = 64;

export interface FlowHooks {
  /** Decode what the decoder kept while reading was stopped (feed it an empty chunk). */
  resume(): void;
  /** A deadline passed, or the peer reads nothing: close the connection with this error. */
  expire(e: ProtocolError): void;
  /** Reading stopped or resumed (the access slot is served only while the peer is read). */
  changed?(reading: boolean): void;
  /** Counted events: `readStopped.unread`, `readStopped.inflight`. */
  count?(name: string): void;
}

interface Decoder {
  hold(): void;
  release(): void;
  readonly pending: boolean;
}

export class PeerFlow {
  private readonly stops = new Set<StopReason>();
  private inflight = 0;
  private frameTimer: NodeJS.Timeout | null = null;
  private helloTimer: NodeJS.Timeout | null = null;
  private disposed = false;
  private hello = false;

  constructor(
    private readonly socket: Socket,
    private readonly decoder: Decoder,
    readonly limits: ChannelLimits,
    private readonly hooks: FlowHooks,
  ) {
    this.helloTimer = setTimeout(() => {
      this.helloTimer = null;
      this.expire(new ProtocolError('timeout', `no hello within ${limits.helloDeadlineMs} ms of the connect`));
    }, limits.helloDeadlineMs);
    this.helloTimer.unref();
  }

  /** Whether the peer is being read. */
  get reading(): boolean {
    return this.stops.size === 0;
  }

  /** The hello has arrived. */
  get helloArrived(): boolean {
    return this.hello;
  }

  /** The hello arrived in time; nothing more is read until it is accepted (welcomed). */
  gotHello(): void {
    this.hello = true;
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.helloTimer = null;
    this.stop('hello');
  }

  /** The welcome was sent and the accesses that came with the hello were handled. */
  welcomed(): void {
    this.go('hello');
  }

  /** FRAMES_PER_TURN frames were handled in this turn: the rest waits for the next one. */
  yieldTurn(): void {
    if (this.stops.has('turn') || this.disposed) return;
    this.stop('turn');
    setImmediate(() => this.go('turn'));
  }

  accessStarted(): void {
    if (++this.inflight >= this.limits.maxInflight) this.stop('inflight');
  }

  accessDone(): void {
    this.inflight--;
    if (this.inflight < this.limits.maxInflight) this.go('inflight');
  }

  /** After each write to the socket: the peer's unread bytes against the bounds. */
  wrote(): void {
    const unread = this.socket.writableLength;
    if (unread <= this.limits.maxUnread || this.disposed) return;
    if (unread > hardUnread(this.limits)) {
      this.expire(new ProtocolError('refused', `${unread} bytes sent to the peer are unread: it does not read its socket`));
      return;
    }
    if (this.stops.has('unread')) return;
    this.stop('unread');
    // writableLength is above the socket's high-water mark, so the last write returned
    // false and 'drain' follows once everything was taken by the kernel.
    this.socket.once('drain', () => this.go('unread'));
  }

  /** After the bytes of a 'data' event were decoded: a frame left partial starts its deadline. */
  afterData(): void {
    if (this.decoder.pending && this.reading && !this.disposed) {
      if (this.frameTimer) return;
      this.frameTimer = setTimeout(() => {
        this.frameTimer = null;
        this.expire(new ProtocolError('timeout', `a frame started ${this.limits.frameDeadlineMs} ms ago is not complete`));
      }, this.limits.frameDeadlineMs);
      this.frameTimer.unref();
    } else this.clearFrameTimer();
  }

  /** The connection ended: no timer fires any more. */
  dispose(): void {
    this.disposed = true;
    this.clearFrameTimer();
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.helloTimer = null;
  }

  /** Once: closing writes an `err`, which comes back through wrote(). */
  private expire(e: ProtocolError): void {
    if (this.disposed) return;
    this.disposed = true;
    this.hooks.expire(e);
  }

  private clearFrameTimer(): void {
    if (this.frameTimer) clearTimeout(this.frameTimer);
    this.frameTimer = null;
  }

  private stop(reason: StopReason): void {
    if (this.stops.has(reason)) return;
    const was = this.reading;
    this.stops.add(reason);
    if (reason === 'unread' || reason === 'inflight') this.hooks.count?.(`readStopped.${reason}`);
    if (!was) return;
    this.socket.pause();
    this.decoder.hold();
    // A frame the peer cannot finish while we do not read is not late.
    this.clearFrameTimer();
    this.hooks.changed?.(false);
  }

  private go(reason: StopReason): void {
    if (!this.stops.delete(reason) || !this.reading || this.disposed) return;
    this.decoder.release();
    this.hooks.resume(); // may stop reading again (the kept bytes hold another bound's worth)
    if (!this.reading || this.disposed) return;
    this.socket.resume();
    this.hooks.changed?.(true);
    this.afterData();
  }
}
