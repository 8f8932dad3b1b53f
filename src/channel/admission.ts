// Connections that have not been welcomed yet. They are accepted paused (the server's
// pauseOnConnect): reading a connection costs a read buffer of up to 64 KiB, holding a paused
// one only its socket object. At most `maxReading` of them are read at once; the others
// wait in order, paused, at most `maxQueued`, and a connect beyond that is refused (closed at
// once, unread). While connections wait, a reader that has been read for `graceMs` and has
// not sent its hello is closed (oldest first) and a waiting one is read in its place. An
// honest peer sends its hello right after its connect, so it is read and welcomed however
// many silent connections came before it; a flood of connects costs the supervisor a
// bounded number of sockets, and never a read buffer for each.

export interface GateHooks<C> {
  /** True while the connection's hello has not arrived: a reader that may be closed. */
  silent(conn: C): boolean;
  /** Start reading the connection. */
  read(conn: C): void;
  /** Close a silent reader to make room for a waiting connection. */
  evict(conn: C): void;
  /** Close a connection that arrived when `maxQueued` were already waiting. */
  refuse(conn: C): void;
}

export interface GateLimits {
  maxReading: number;
  maxQueued: number;
  /** How long a reader may take to send its hello before a waiting connection may take its place (ms). */
  graceMs: number;
}

export class HelloGate<C> {
  /** Being read; insertion order is age. The value: when reading started (ms). */
  private readonly reading = new Map<C, number>();
  /** Paused, waiting to be read; insertion order is age. */
  private readonly queued = new Set<C>();
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly limits: GateLimits,
    private readonly hooks: GateHooks<C>,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Connections not welcomed yet: read, and waiting. */
  get size(): number {
    return this.reading.size + this.queued.size;
  }

  /** A new connection (paused) waits for its welcome. */
  admit(conn: C): void {
    if (this.reading.size < this.limits.maxReading) return this.startReading(conn);
    if (this.queued.size >= this.limits.maxQueued) return this.hooks.refuse(conn);
    this.queued.add(conn);
    this.queueSweep();
  }

  /** Welcomed or closed. */
  done(conn: C): void {
    if (this.queued.delete(conn)) return;
    if (this.reading.delete(conn)) this.fill();
  }

  /** Stop the sweep timer (the server closes). */
  close(): void {
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
  }

  private startReading(conn: C): void {
    this.reading.set(conn, this.now());
    this.hooks.read(conn);
  }

  private fill(): void {
    for (const next of this.queued) {
      if (this.reading.size >= this.limits.maxReading) return;
      this.queued.delete(next);
      this.startReading(next);
    }
  }

  /**
   * Sweeps every quarter of the grace while connections wait. The sweep runs in a setImmediate after
   * the timer, so after the event loop's I/O of that turn: a reader whose hello has come
   * by then is read before it is judged, even when the loop was held up for a while.
   */
  private queueSweep(): void {
    if (this.sweepTimer || this.queued.size === 0) return;
    this.sweepTimer = setTimeout(() => setImmediate(() => this.sweep()), Math.max(1, this.limits.graceMs / 4));
    this.sweepTimer.unref();
  }

  private sweep(): void {
    this.sweepTimer = null;
    const now = this.now();
    for (const [conn, since] of [...this.reading]) {
      if (this.queued.size === 0) break;
      if (now - since < this.limits.graceMs || !this.hooks.silent(conn)) continue;
      this.reading.delete(conn);
      this.hooks.evict(conn);
      this.fill();
    }
    this.fill();
    this.queueSweep();
  }
}
