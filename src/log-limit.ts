// Log lines a guest can cause at will (a denied access, a protocol error, a connection
// closed for want of a hello) are counted always, but logged at most `perWindow` times per
// key per window: a flooding guest must not make the supervisor spend its time (or a slow
// stderr's buffer) on log lines. The first line after a quiet spell says how many were left out.

export class LogLimiter {
  private readonly keys = new Map<string, { start: number; n: number; left: number }>();

  constructor(
    private readonly perWindow = 20,
    private readonly windowMs = 1000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Whether to log one more line of `key` now; `leftOut`: lines of the key not logged since
   * the last one that was (0 when none). Keys are few (a kind of event, per guest).
   */
  take(key: string): { log: boolean; leftOut: number } {
    const t = this.now();
    let k = this.keys.get(key);
    if (!k || t - k.start >= this.windowMs) {
      const leftOut = k?.left ?? 0;
      k = { start: t, n: 1, left: 0 };
      this.keys.set(key, k);
      return { log: true, leftOut };
    }
    if (k.n < this.perWindow) {
      k.n++;
      return { log: true, leftOut: 0 };
    }
    k.left++;
    return { log: false, leftOut: 0 };
  }
}
