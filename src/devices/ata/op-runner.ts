// Async operations of a device model (backend I/O, DMA), with cancellation by generation:
// a reset bumps the generation and every step of an older operation throws STALE, so a late
// completion never touches the registers of the reset drive.

export const STALE = Symbol('stale');

/** Wraps each await of an operation; throws STALE once the operation is outdated. */
export type Step = <T>(p: Promise<T>) => Promise<T>;

export class OpRunner {
  private gen = 0;
  private inflight = 0;
  private waiters: Array<() => void> = [];

  /**
   * @param onBug   an operation threw something other than STALE (a model bug: counted, not thrown)
   * @param settled called after each operation ends (the device recomputes derived outputs)
   */
  constructor(
    private readonly onBug: (e: unknown) => void,
    private readonly settled: () => void,
  ) {}

  get active(): boolean {
    return this.inflight > 0;
  }

  run(op: (step: Step) => Promise<void>): void {
    const gen = this.gen;
    const step: Step = async (p) => {
      const v = await p.catch((e: unknown) => {
        throw this.gen !== gen ? STALE : e;
      });
      if (this.gen !== gen) throw STALE;
      return v;
    };
    this.inflight++;
    op(step)
      .catch((e: unknown) => {
        if (e !== STALE) this.onBug(e);
      })
      .finally(() => {
        this.settled();
        if (--this.inflight === 0) for (const w of this.waiters.splice(0)) w();
      });
  }

  /** Outdates every running operation (their host I/O still finishes, unobserved). */
  cancelAll(): void {
    this.gen++;
  }

  whenIdle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
