// Running `muxvisor run CONFIG --exit-when-done` with Linux guests from a test, live: its
// stdout events, its stderr log lines, each guest's console file, and the guests' QEMU
// processes (found by the `muxvisor.guest=NAME` word of their command line) to signal.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { descendsFrom } from '../../src/channel/peer-auth.ts';

export const CLI = join(import.meta.dirname, '..', '..', 'src', 'bin', 'muxvisor.mjs');

export interface PerGuestStats {
  guest: string;
  faults: number;
  resets: number;
  accesses: number;
  grants: number;
  faulted: boolean;
}
export interface RunEvent {
  event: string;
  guest?: string;
  ok?: boolean;
  how?: string;
  detail?: string;
  signal?: string;
  stats?: { devices: { unsafeSwitches: number; switches: number; faults: number; resets: number; perGuest: PerGuestStats[] }[] };
}

export interface LiveRun {
  /** The supervisor's pid: its guests' QEMUs descend from it (qemuPidOf). */
  pid: number;
  /** stdout events so far (JSON lines). */
  events(): RunEvent[];
  /** stderr so far (the supervisor's JSON log lines and the guests' output). */
  stderr(): string;
  /** Resolves when the supervisor exits: its exit code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }>;
}

/** Starts the run; it is killed (SIGTERM, then SIGKILL) after `timeoutMs`. */
export function startRun(configPath: string, timeoutMs: number, logLevel = 'warn'): LiveRun {
  const child = spawn(process.execPath, [CLI, '--log-level', logLevel, '--json', 'run', configPath, '--exit-when-done'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  }, timeoutMs);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }>((resolve) =>
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut });
    }),
  );
  const events = (): RunEvent[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as RunEvent);
  return { pid: child.pid!, events, stderr: () => err, exited };
}

/** A guest's console (a file the run writes), lines without \r; [] before it exists. */
export function consoleLines(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'latin1').replace(/\r/g, '').split('\n');
}

/**
 * The pid of the QEMU running guest `name` (its -append holds `muxvisor.guest=NAME`) under the
 * supervisor `under` (another test run on the machine may have a guest of that name), or null.
 */
export function qemuPidOf(name: string, under: number): number | null {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!/qemu-system/.test(argv[0] ?? '')) continue;
    const append = argv[argv.indexOf('-append') + 1] ?? '';
    if (append.split(/\s+/).includes(`muxvisor.guest=${name}`) && descendsFrom(Number(d), under)) return Number(d);
  }
  return null;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every `everyMs` until it holds (true) or `ms` pass (false). */
export async function waitFor(cond: () => boolean, ms: number, everyMs = 200): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(everyMs);
  }
  return cond();
}
