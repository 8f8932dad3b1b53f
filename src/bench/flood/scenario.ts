// One supervisor (`muxvisor run`, a separate process whose RSS is sampled from
// /proc/PID/status), honest guests (the trapped ata-pio driver, each verifying its own
// window) and, optionally, a hostile guest's flood (peer.ts: string reads never read, half
// frames, a burst of connects) running while the honest guests do their work. Shared by
// `muxvisor bench --only flood` (throughput with and without the flood) and
// test/channel-flood.test.ts (RSS within the documented bound, the honest guests verified).

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GuestSchema } from '../../config/schema.ts';
import { TRAP_BUILD_DIR, runTrapped } from '../../trap/user.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = resolve(HERE, '../../bin/muxvisor.mjs');
const PEER = resolve(HERE, 'peer.ts');
export const ATA_PIO = join(TRAP_BUILD_DIR, 'ata-pio');

export interface FloodOptions {
  /** Honest guests (each a trapped ata-pio on its own window). */
  honest: number;
  /** Sectors each writes and verifies per pass, and passes. */
  sectors: number;
  passes: number;
  /** Run the hostile flood while the honest guests work. */
  flood: boolean;
  /** Flood sizes: reads tried, half-frame connections (of each kind), simultaneous connects. */
  reads?: number;
  halfFrames?: number;
  connects?: number;
  /** Which floods (default all): big, reads, halfframes, halfafter, connects. */
  modes?: string[];
  /** The honest guests' access slot (default: the shim's default, the slot while the supervisor polls). */
  slot?: boolean;
  /** Start the bursts of connections this long after the honest guests (default 0: with them). */
  burstDelayMs?: number;
}

export interface FloodResult {
  honest: { guest: string; ok: boolean; ms: number; line: string }[];
  /** Sectors moved per second by the honest guests together (written + read), each timed by itself. */
  sectorsPerSecond: number;
  /** CPU time the supervisor used while the honest guests ran (the flood's cost shows here too). */
  supervisorCpuMs: number;
  rss: { beforeKiB: number; maxKiB: number };
  /** What each flooding process reported when its flood was in place. */
  flood: Record<string, unknown>[];
  /** The supervisor's statistics when it stopped (protocol errors, channel counters). */
  stats: { protocolErrors: Record<string, number>; channel: Record<string, number>; guests: { guest: string; denials: number }[] } | null;
}

/** utime + stime of a process, in ms (/proc/PID/stat, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // fields 14 and 15 of the whole line
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m ? Number(m[1]) : 0;
}

function lines(child: ChildProcess, onLine: (line: string) => void): void {
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    buf += s;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

function firstLine(child: ChildProcess, match: (line: string) => boolean, what: string, ms = 60_000): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    lines(child, (l) => {
      if (match(l)) {
        clearTimeout(t);
        resolvePromise(l);
      }
    });
    child.once('exit', (code) => reject(new Error(`${what}: the process exited (${code}) first`)));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runFlood(o: FloodOptions): Promise<FloodResult> {
  const dir = mkdtempSync(join(tmpdir(), 'muxvisor-flood-'));
  const socket = join(dir, 'mv.sock');
  const window = Math.max(o.sectors, 64);
  const honest = Array.from({ length: o.honest }, (_, i) => `h${i}`);
  // Guests that connect by themselves are known by their uid (ours), where the config asks.
  const auth = 'auth' in GuestSchema.shape ? { auth: { uid: process.getuid?.() ?? 0 } } : {};
  const config = {
    socket,
    devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'file', path: join(dir, 'disk.img'), sizeMiB: Math.ceil(((o.honest + 1) * window) / 2048) + 1, create: true } }],
    guests: [
      ...honest.map((name, i) => ({ name, ...auth, grants: [{ device: 'disk0', window: { startLba: i * window, sectors: window } }] })),
      // The hostile guest is granted a port with nothing behind it: everything else is denied.
      { name: 'mallory', ...auth, grants: [{ space: 'pio', start: '0x80', end: '0x80' }] },
    ],
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const log = openSync(join(dir, 'supervisor.log'), 'w');
  const sup = spawn(process.execPath, [CLI, '--json', '--log-level', 'warn', 'run', join(dir, 'config.json')], { stdio: ['ignore', 'pipe', log] });
  const floods: ChildProcess[] = [];
  let maxKiB = 0;
  let sampler: NodeJS.Timeout | null = null;
  try {
    let stoppedLine: string | null = null;
    lines(sup, (l) => {
      if (l.includes('"event":"stopped"')) stoppedLine = l;
    });
    await firstLine(sup, (l) => l.includes('"event":"listening"'), 'the supervisor to listen');
    const pid = sup.pid!;
    sampler = setInterval(() => (maxKiB = Math.max(maxKiB, rssKiB(pid))), 20);
    await sleep(500); // start-up garbage settles
    const beforeKiB = rssKiB(pid);
    maxKiB = beforeKiB;
    const report: Record<string, unknown>[] = [];
    let bursts: Promise<unknown> = Promise.resolve();
    if (o.flood) {
      const start = (mode: string, count: number) => {
        const c = spawn(process.execPath, ['--import', 'tsx', PEER, socket, mode, 'mallory', String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
        floods.push(c);
        return firstLine(c, (l) => l.startsWith('{'), `flood ${mode}`).then((l) => report.push(JSON.parse(l) as Record<string, unknown>));
      };
      // A burst loads first (node and tsx cost CPU) and floods when told, with the honest guests.
      const loaded = async (mode: string, count: number): Promise<() => Promise<unknown>> => {
        const c = spawn(process.execPath, ['--import', 'tsx', PEER, socket, mode, 'mallory', String(count)], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, FLOOD_WAIT: '1' } });
        floods.push(c);
        const ready = firstLine(c, (l) => l.startsWith('{"ready"'), `flood ${mode}`);
        await firstLine(c, (l) => l.startsWith('{"loaded"'), `flood ${mode} to load`);
        return () => (c.stdin!.write('go\n'), ready.then((l) => report.push(JSON.parse(l) as Record<string, unknown>)));
      };
      const on = (m: string) => !o.modes || o.modes.includes(m);
      // One hostile guest connection at a time (the config's guest may be attached once):
      // the big read first (it is closed for it), then the reads nobody reads.
      if (on('big')) await start('big', 1);
      if (on('reads')) await start('reads', o.reads ?? 100_000);
      else if (on('halfafter')) await start('halfafter', 1);
      const triggers = await Promise.all([on('halfframes') ? loaded('halfframes', o.halfFrames ?? 200) : null, on('connects') ? loaded('connects', o.connects ?? 1000) : null]);
      // The bursts of connections start with the honest guests, whose connects fall among
      // them, or burstDelayMs later, when the honest guests are at work.
      const fire = () => Promise.all(triggers.map((t) => t?.()));
      bursts = o.burstDelayMs ? sleep(o.burstDelayMs).then(fire) : fire();
    }
    const cpu0 = cpuMs(pid);
    const runs = await Promise.all(
      honest.map((guest, i) => runTrapped(ATA_PIO, ['--sectors', String(o.sectors), '--passes', String(o.passes), '--batch', '8', '--seed', String(i + 1)], { socket, guest, ...(o.slot === undefined ? {} : { slot: o.slot }) })),
    );
    const supervisorCpuMs = cpuMs(pid) - cpu0;
    await bursts;
    const results = runs.map((r, i) => {
      const line = r.stdout.trim().split('\n').find((l) => l.includes(' ms, ')) ?? `${r.stdout.trim()} ${r.stderr.trim()}`.trim();
      return { guest: honest[i], ok: r.code === 0 && line.endsWith('verified'), ms: Number(/in (\d+) ms/.exec(line)?.[1] ?? NaN), line };
    });
    clearInterval(sampler);
    sampler = null;
    maxKiB = Math.max(maxKiB, rssKiB(pid));
    for (const f of floods) f.kill('SIGKILL');
    sup.kill('SIGTERM');
    await new Promise((r) => sup.once('exit', r));
    const stats = stoppedLine ? ((JSON.parse(stoppedLine) as { stats: FloodResult['stats'] }).stats ?? null) : null;
    return {
      honest: results,
      sectorsPerSecond: Math.round(results.reduce((sum, h) => sum + (o.sectors * o.passes * 2) / (h.ms / 1000), 0)),
      supervisorCpuMs,
      rss: { beforeKiB, maxKiB },
      flood: report,
      stats,
    };
  } finally {
    if (sampler) clearInterval(sampler);
    for (const f of floods) f.kill('SIGKILL');
    if (sup.exitCode === null && sup.signalCode === null) sup.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
