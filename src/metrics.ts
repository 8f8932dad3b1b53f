// Named counters: guest mistakes, denials and protocol errors are counted, not thrown.

export class Counters {
  private readonly values = new Map<string, number>();

  inc(name: string, by = 1): number {
    const v = (this.values.get(name) ?? 0) + by;
    this.values.set(name, v);
    return v;
  }

  get(name: string): number {
    return this.values.get(name) ?? 0;
  }

  total(): number {
    let t = 0;
    for (const v of this.values.values()) t += v;
    return t;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.values].sort(([a], [b]) => a.localeCompare(b)));
  }
}

/** Monotonic nanoseconds (the default Clock). */
export function monotonicNs(): number {
  return Number(process.hrtime.bigint());
}
