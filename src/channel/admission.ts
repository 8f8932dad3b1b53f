// Connections that have not been welcomed yet. They are accepted paused (the server's
// pauseOnConnect): reading a connection costs a read buffer of up to 64 KiB, holding a paused
// one only its socket object. At most `maxReading` of them are read at once; the others
// wait in order, paused, at most `maxQueued`, and a connect beyond that is refused (closed at
// once, unread). When connections wait, the readers that have had a full turn of the event
// loop to send their hello and sent none are closed (oldest first) and the waiting ones
// read in their place. An honest peer sends its hello with its connect, so it is read, and
// welcomed, however many silent connections came before it; a flood of connects costs the
// supervisor a bounded number of sockets, and never a read buffer for each.

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

export class HelloGate<C> {
  /** Being read; insertion order is age. The value: the sweep during which it started. */
  private readonly reading = new Map<C, number>();
  /** Paused, waiting to be read; insertion order is age. */
  private readonly queued = new Set<C>();
  private sweeps = 0;
  private sweepQueued = false;

  constructor(
    private readonly maxReading: number,
    private readonly maxQueued: number,
    private readonly hooks: GateHooks<C>,
  ) {}

  /** Connections not welcomed yet: read, and waiting. */
  get size(): number {
    return this.reading.size + this.queued.size;
  }

  /** A new connection (paused) waits for its welcome. */
  admit(conn: C): void {
    if (this.reading.size < this.maxReading) return this.startReading(conn);
    if (this.queued.size >= this.maxQueued) return this.hooks.refuse(conn);
    this.queued.add(conn);
    this.queueSweep();
  }

  /** Welcomed or closed. */
  done(conn: C): void {
    if (this.queued.delete(conn)) return;
    if (!this.reading.delete(conn)) return;
    this.fill();
  }

  private startReading(conn: C): void {
    this.reading.set(conn, this.sweeps);
    this.hooks.read(conn);
  }

  private fill(): void {
    for (const next of this.queued) {
      if (this.reading.size >= this.maxReading) return;
      this.queued.delete(next);
      this.startReading(next);
    }
  }

  private queueSweep(): void {
    if (this.sweepQueued) return;
    this.sweepQueued = true;
    // The first setImmediate runs after this turn's I/O, the second after the next turn's:
    // by then a reader started before this sweep has been read at least once.
    setImmediate(() =>
      setImmediate(() => {
        this.sweepQueued = false;
        this.sweep();
      }),
    );
  }

  private sweep(): void {
    const now = ++this.sweeps;
    if (this.queued.size === 0) return;
    for (const [conn, since] of [...this.reading]) {
      if (this.queued.size === 0) break;
      if (since >= now - 1 || !this.hooks.silent(conn)) continue;
      this.reading.delete(conn);
      this.hooks.evict(conn);
      this.fill();
    }
    this.fill();
    if (this.queued.size > 0) this.queueSweep();
  }
}
