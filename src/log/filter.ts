// Record filters shared by `log show`, `stats` and `export`: guest, device, register, time.

import type { LogRecord } from './record.ts';

export interface LogFilter {
  guests?: string[];
  devices?: string[];
  /** Register names; `CMD` matches `ATA_REG_CMD` (a name's last part), case-insensitive. */
  registers?: string[];
  /** ns since the log started, inclusive. */
  from?: number;
  to?: number;
}

/** A time as the CLI takes it: `1.5s`, `200ms`, `30us`, `1500ns`, or a bare number of ns. */
export function parseTime(s: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|ms|us|µs|ns)?\s*$/.exec(s);
  if (!m) throw new Error(`${what}: expected a time such as 1.5s, 200ms, 30us or a number of ns, got "${s}"`);
  const scale = { s: 1e9, ms: 1e6, us: 1e3, µs: 1e3, ns: 1 }[m[2] ?? 'ns']!;
  return Math.round(Number(m[1]) * scale);
}

export function registerMatches(reg: string | null, wanted: string[]): boolean {
  if (!reg) return false;
  const r = reg.toUpperCase();
  return wanted.some((w) => {
    const x = w.toUpperCase();
    return r === x || r.endsWith(`_${x}`);
  });
}

export function matches(rec: LogRecord, f: LogFilter): boolean {
  if (rec.type === 'header' || rec.type === 'end') return false;
  if (f.from !== undefined && rec.t < f.from) return false;
  if (f.to !== undefined && rec.t > f.to) return false;
  if (f.guests?.length && !(rec.guest !== undefined && f.guests.includes(rec.guest))) return false;
  if (f.devices?.length && !(rec.device !== null && f.devices.includes(rec.device))) return false;
  if (f.registers?.length && (rec.type !== 'access' || !registerMatches(rec.reg, f.registers))) return false;
  return true;
}
