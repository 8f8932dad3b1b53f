// Chaos: isolation holds against a hostile guest. One `muxvisor run CONFIG --exit-when-done`
// (the real CLI, a child process) serves one ATA disk, a raw image pre-filled with a known
// pattern per sector, to three honest unmodified C drivers (two PIO, one bus-master DMA) in
// windows of their own and to a hostile one (test/drivers/ata-hostile.c) in a fourth window:
// random port I/O in every trapped form, random commands and task files, SRST, bad PRD
// tables, LBAs beyond its window, ungranted ports. Per seed (a run each):
//   - the honest guests verify their data (exit 0 and their own "verified" line);
//   - the supervisor stays up, exits 0 with `stopped` signal "done", no unsafe switch;
//   - sector by sector, the image after the run holds in each honest window exactly what its
//     driver wrote (the rest of that window unchanged), and every sector outside all windows
//     is unchanged; only the hostile window may hold anything;
//   - the supervisor counted the hostile guest's denials.
// A failure prints the seed, a replay line and the first differing sector.
//
// CHAOS_SEEDS=7,8 picks the seeds; CHAOS_OPS the hostile's operations per run; CHAOS_KEEP=1
// keeps the run's folder (image, config, stdout.jsonl, stderr.log); CHAOS_VERBOSE=1 has the hostile
// log each operation; CHAOS_LOG_LEVEL=trace logs every access (a register trace to replay by eye).
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TRAP_BUILD_DIR } from '../src/trap/user.ts';
import { missingFile, titled } from './helpers/requires.ts';
import { buildTrap } from './helpers/trap-build.ts';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'src', 'bin', 'muxvisor.mjs');
const HOSTILE = join(TRAP_BUILD_DIR, 'ata-hostile');
const SECTOR = 512;
const SEEDS = (process.env.CHAOS_SEEDS ?? '1,2,3,4').split(',').map((s) => Number(s.trim()));
const OPS = Number(process.env.CHAOS_OPS ?? 2500);
const HOSTILE_MAX_MS = 10_000; // the hostile's wall-clock bound, so a slow machine keeps the file under ~2 min
const RUN_TIMEOUT_MS = 100_000; // the supervisor is killed past this: a hang is a failure

/** An honest guest: its driver and what it leaves on the disk (guest LBAs 0..sectors-1). */
interface Honest {
  name: string;
  sectors: number;
  seed: number;
  /** The pass whose pattern stays on the disk (ata-pio --passes P leaves pass P-1). */
  pass: number;
  argv: string[];
  /** Its "verified" line (its stdout reaches the supervisor's stderr). */
  verified: RegExp;
}

const WINDOW = 1024; // sectors of an honest window
const HOSTILE_WINDOW = 2048;
const GAP = 128; // nobody's sectors before, between and after the windows

function honestGuests(seed: number): Honest[] {
  const s = (k: number) => (seed * 16 + k) >>> 0;
  const pio = (name: string, sectors: number, batch: number, passes: number, k: number, extra: string[]): Honest => ({
    name,
    sectors,
    seed: s(k),
    pass: passes - 1,
    argv: [join(TRAP_BUILD_DIR, 'ata-pio'), '--sectors', String(sectors), '--batch', String(batch), '--passes', String(passes), '--seed', String(s(k)), ...extra],
    verified: new RegExp(`^ata-pio: model "[^"]*", ${WINDOW} sectors; wrote and read ${sectors} sectors from LBA 0 x${passes} passes in \\d+ ms, \\d+ interrupts: verified$`, 'm'),
  });
  return [
    pio('pio-irq', 96, 8, 3, 1, []),
    {
      name: 'dma',
      sectors: 192,
      seed: s(2),
      pass: 0,
      argv: [join(TRAP_BUILD_DIR, 'ata-dma'), '--sectors', '192', '--batch', '16', '--seed', String(s(2))],
      verified: new RegExp(`^ata-dma: model "[^"]*", ${WINDOW} sectors; DMA wrote and read 192 sectors in \\d+ ms, \\d+ interrupts: verified$`, 'm'),
    },
    pio('pio-poll', 64, 4, 3, 3, ['--no-irq']),
  ];
}

/** Where each guest's window lies: gap, honest 0, gap, honest 1, gap, hostile, gap, honest 2, gap. */
interface Layout {
  windows: { name: string; start: number; sectors: number; honest?: Honest }[];
  totalSectors: number;
}

function layout(honest: Honest[]): Layout {
  let at = GAP;
  const place = (name: string, sectors: number, h?: Honest) => {
    const w = { name, start: at, sectors, honest: h };
    at += sectors + GAP;
    return w;
  };
  const windows = [place(honest[0].name, WINDOW, honest[0]), place(honest[1].name, WINDOW, honest[1]), place('hostile', HOSTILE_WINDOW), place(honest[2].name, WINDOW, honest[2])];
  return { windows, totalSectors: Math.ceil((at + 1024) / 2048) * 2048 };
}

/** The pre-filled content of physical sector `lba`: "CHAOSFIL", its LBA, then a ramp. */
function fillSector(lba: number): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.write('CHAOSFIL', 0, 'latin1');
  b.writeUInt32LE(lba, 8);
  for (let i = 12; i < SECTOR; i++) b[i] = (lba + i * 13) & 0xff;
  return b;
}

/** ata-common.h `pattern`: word i of guest LBA lba. */
function patternSector(seed: number, pass: number, lba: number): Buffer {
  const b = Buffer.alloc(SECTOR);
  for (let i = 0; i < SECTOR / 2; i++) {
    const x = (Math.imul(lba, 2654435761) + Math.imul(i, 40503) + Math.imul(seed, 97) + Math.imul(pass, 7919)) >>> 0;
    b.writeUInt16LE((x ^ (x >>> 16)) & 0xffff, 2 * i);
  }
  return b;
}

interface Expectation {
  /** Who the sector belongs to, for messages. */
  owner: string;
  /** The content it must have, or null: anything (the hostile window). */
  want: Buffer | null;
  what: string;
}

function expectationOf(lay: Layout, lba: number): Expectation {
  for (const w of lay.windows) {
    if (lba < w.start || lba >= w.start + w.sectors) continue;
    const local = lba - w.start;
    const owner = `${w.name} window, its LBA ${local}`;
    if (!w.honest) return { owner, want: null, what: 'anything' };
    if (local < w.honest.sectors) return { owner, want: patternSector(w.honest.seed, w.honest.pass, local), what: `${w.name}'s pattern (seed ${w.honest.seed}, pass ${w.honest.pass})` };
    return { owner, want: fillSector(lba), what: 'the pre-filled sector (beyond what its driver writes)' };
  }
  return { owner: 'no window', want: fillSector(lba), what: 'the pre-filled sector' };
}

interface Diff {
  count: number;
  /** Differing sectors by owner and by what they hold instead. */
  byOwner: Map<string, number>;
  /** Sectors holding data that is neither theirs nor the pre-filled one: another guest's (a breach). */
  foreign: number;
  first: string | null;
  firstForeign: string | null;
  hostileChanged: number;
}

function hex(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** What a wrong sector holds instead: never written, an older pass of its owner, or foreign data. */
function whatItHolds(lay: Layout, lba: number, got: Buffer): 'pre-filled' | 'older pass' | 'foreign' {
  if (got.equals(fillSector(lba))) return 'pre-filled';
  const w = lay.windows.find((x) => x.honest && lba >= x.start && lba < x.start + x.sectors);
  if (w?.honest) for (let p = 0; p < w.honest.pass; p++) if (got.equals(patternSector(w.honest.seed, p, lba - w.start))) return 'older pass';
  return 'foreign';
}

function describeSector(lba: number, e: Expectation, got: Buffer, holds: string): string {
  let at = 0;
  while (got[at] === e.want![at]) at++;
  const from = at & ~15;
  const filled = got.subarray(0, 8).toString('latin1') === 'CHAOSFIL' ? ` (the pre-filled sector of LBA ${got.readUInt32LE(8)})` : '';
  return (
    `physical LBA ${lba} (${e.owner}) holds ${holds} data, from byte ${at}; expected ${e.what}\n` +
    `  expected @${from}: ${hex(e.want!.subarray(from, from + 32))}\n` +
    `  got      @${from}: ${hex(got.subarray(from, from + 32))}${filled}`
  );
}

function compareImage(lay: Layout, image: Buffer): Diff {
  const d: Diff = { count: 0, byOwner: new Map(), foreign: 0, first: null, firstForeign: null, hostileChanged: 0 };
  for (let lba = 0; lba < lay.totalSectors; lba++) {
    const got = image.subarray(lba * SECTOR, (lba + 1) * SECTOR);
    const e = expectationOf(lay, lba);
    if (!e.want) {
      if (!got.equals(fillSector(lba))) d.hostileChanged++;
      continue;
    }
    if (got.equals(e.want)) continue;
    d.count++;
    const holds = whatItHolds(lay, lba, got);
    const key = `${e.owner.replace(/, its LBA \d+$/, '')}: ${holds}`;
    d.byOwner.set(key, (d.byOwner.get(key) ?? 0) + 1);
    d.first ??= describeSector(lba, e, got, holds);
    if (holds === 'foreign') {
      d.foreign++;
      d.firstForeign ??= describeSector(lba, e, got, holds);
    }
  }
  return d;
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  /** The logs and the guests' output (their stdout and stderr go to the supervisor's stderr). */
  stderr: string;
}

/**
 * A hung run: where each process under the supervisor waits (state, kernel wait channel,
 * system call, from /proc), printed before it is killed, so a rare hang leaves its cause.
 */
function diagnoseHang(root: number): void {
  const lines: string[] = [];
  const visit = (pid: number, depth: number): void => {
    const read = (f: string): string => {
      try {
        return readFileSync(`/proc/${pid}/${f}`, 'utf8').replace(/\0/g, ' ').trim();
      } catch {
        return '?';
      }
    };
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      return;
    }
    lines.push(`${'  '.repeat(depth)}${pid} ${read('cmdline').slice(0, 120)}`);
    for (const t of tids) {
      const stat = read(`task/${t}/stat`).replace(/^.*\) /, '').split(' ')[0];
      lines.push(`${'  '.repeat(depth)}  task ${t}: state ${stat} wchan ${read(`task/${t}/wchan`)} syscall ${read(`task/${t}/syscall`).split(' ').slice(0, 3).join(' ')}`);
    }
    for (const t of tids) for (const c of read(`task/${t}/children`).split(' ').filter(Boolean)) visit(Number(c), depth + 1);
  };
  visit(root, 0);
  console.error(`hang diagnosis (processes under the supervisor):\n${lines.join('\n')}`);
}

/** Runs the CLI; its stderr (logs and the guests' output) goes to `stderrPath`, read back at the end. */
function runCli(args: string[], stderrPath: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const errFd = openSync(stderrPath, 'w');
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', errFd] });
    closeSync(errFd);
    let stdout = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s)); // stdio[1] is 'pipe'
    const timer = setTimeout(() => {
      timedOut = true;
      diagnoseHang(child.pid!);
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    }, RUN_TIMEOUT_MS);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, stdout, stderr: readFileSync(stderrPath, 'utf8') });
    });
  });
}

interface GuestEvent {
  event: 'guest';
  guest: string;
  ok: boolean;
  detail: string;
}
interface PerGuest {
  guest: string;
  accesses: number;
  denials: number;
  faults: number;
  dmaRefused: number;
  faulted: boolean;
}
interface StoppedEvent {
  event: 'stopped';
  signal: string;
  stats: {
    devices: { unsafeSwitches: number; switches: number; resets: number; perGuest: PerGuest[] }[];
    deviceMetrics: Record<string, Record<string, number>>;
    guests: { guest: string; accesses: number; denials: number; unmapped: number; faults: number }[];
  };
}

/** Lines the guests printed (not the supervisor's pino JSON). */
function guestLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l && !l.startsWith('{'));
}

const missing = missingFile(join(TRAP_BUILD_DIR, 'ata-pio'), 'make -C native/trap builds it');

describe.skipIf(missing !== null)(titled('chaos: a hostile user-mode ATA driver beside three honest ones', missing), () => {
  beforeAll(() => buildTrap());

  for (const seed of SEEDS) {
    it(`seed ${seed}: honest guests verify, sectors outside the hostile window hold only their owners' data, denials counted`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `mv-chaos-${seed}-`));
      try {
        const honest = honestGuests(seed);
        const lay = layout(honest);
        const image = join(dir, 'disk.img');
        const before = Buffer.concat(Array.from({ length: lay.totalSectors }, (_, lba) => fillSector(lba)));
        writeFileSync(image, before);
        const hostileArgv = [HOSTILE, '--seed', String(seed), '--ops', String(OPS), '--max-ms', String(HOSTILE_MAX_MS), ...(process.env.CHAOS_VERBOSE ? ['--verbose'] : [])];
        const config = {
          socket: join(dir, 'mv.sock'),
          devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'file', path: image }, policy: { name: 'round-robin', options: { quantumNs: 1_000_000 } } }],
          guests: lay.windows.map((w) => ({
            name: w.name,
            run: { type: 'user', argv: w.honest ? w.honest.argv : hostileArgv },
            grants: [{ device: 'disk0', window: { startLba: w.start, sectors: w.sectors } }],
          })),
        };
        writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 1));

        const logLevel = process.env.CHAOS_LOG_LEVEL ?? 'warn';
        const r = await runCli(['--log-level', logLevel, '--json', 'run', join(dir, 'config.json'), '--exit-when-done'], join(dir, 'stderr.log'));
        writeFileSync(join(dir, 'stdout.jsonl'), r.stdout);
        const events = r.stdout
          .split('\n')
          .filter(Boolean)
          .flatMap((l) => {
            try {
              return [JSON.parse(l) as { event: string }];
            } catch {
              return [{ event: 'unparsed', line: l }]; // a supervisor that died mid-line
            }
          });
        const guests = events.filter((e): e is GuestEvent => e.event === 'guest');
        const stopped = events.find((e): e is StoppedEvent => e.event === 'stopped');
        const after = readFileSync(image);
        const diff = compareImage(lay, after);
        const mux = stopped?.stats.devices[0];
        const hostileMux = mux?.perGuest.find((g) => g.guest === 'hostile');
        const hostileSup = stopped?.stats.guests.find((g) => g.guest === 'hostile');
        const lines = guestLines(r.stderr);

        // Everything the run shows, printed when an assertion below fails.
        const report = [
          `chaos seed ${seed} (${OPS} hostile operations): run folder ${dir}${process.env.CHAOS_KEEP ? '' : ' (removed; CHAOS_KEEP=1 keeps it)'}`,
          `replay: CHAOS_SEEDS=${seed} CHAOS_OPS=${OPS} CHAOS_KEEP=1 npx vitest run test/chaos-hostile.test.ts`,
          `supervisor: exit ${r.code ?? r.signal}${r.timedOut ? ` (killed after ${RUN_TIMEOUT_MS} ms: hung)` : ''}, stopped: ${stopped ? stopped.signal : 'none'}`,
          `guests: ${guests.map((g) => `${g.guest} ${g.ok ? 'ok' : 'FAILED'} (${g.detail})`).join('; ')}`,
          `image: ${diff.count} sectors differ outside the hostile window, ${diff.foreign} of them with foreign data${diff.count ? ` (${[...diff.byOwner].map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}; ${diff.hostileChanged} of the hostile window's ${HOSTILE_WINDOW} sectors changed`,
          ...(diff.first ? [`first differing sector: ${diff.first}`] : []),
          ...(diff.firstForeign && diff.firstForeign !== diff.first ? [`first foreign sector: ${diff.firstForeign}`] : []),
          `MUX: ${mux ? `switches ${mux.switches}, unsafe ${mux.unsafeSwitches}, resets ${mux.resets}; ${mux.perGuest.map((g) => `${g.guest}: denials ${g.denials} faults ${g.faults} dmaRefused ${g.dmaRefused}${g.faulted ? ' FAULTED' : ''}`).join('; ')}` : 'no stats'}`,
          `supervisor denials: ${stopped ? stopped.stats.guests.map((g) => `${g.guest} ${g.denials}`).join(', ') : '?'}`,
          `device mistakes: ${stopped ? JSON.stringify(stopped.stats.deviceMetrics.disk0) : '?'}`,
          'guest output:',
          ...lines.slice(0, 60).map((l) => `  ${l}`),
        ].join('\n');
        // Every broken promise of the run, most serious first; the test fails on any, with the report.
        const problems: string[] = [];
        const check = (ok: boolean, what: string) => ok || problems.push(what);
        check(!r.timedOut, `the supervisor hung (killed after ${RUN_TIMEOUT_MS} ms)`);
        check(diff.foreign === 0, `${diff.foreign} sectors outside the hostile window hold foreign data`);
        check(diff.count === 0, `${diff.count} sectors outside the hostile window differ from what their owner wrote or the pre-filled data`);
        check(statSync(image).size === before.length, `the image changed size: ${statSync(image).size} bytes`);
        check(stopped?.signal === 'done', `the supervisor did not stop with "done": ${stopped?.signal ?? 'no stopped line'}`);
        check(r.code === 0, `the supervisor exited with ${r.code ?? r.signal}, not 0`);
        check(mux === undefined || mux.unsafeSwitches === 0, `unsafe switches: ${mux?.unsafeSwitches}`); // no stats: said above
        for (const h of honest) {
          const ev = guests.find((g) => g.guest === h.name);
          check(ev?.ok === true, `${h.name} failed: ${ev?.detail ?? 'no guest line'}`);
          check(h.verified.test(r.stderr), `${h.name} printed no "verified" line`);
          check(mux?.perGuest.find((g) => g.guest === h.name)?.faulted !== true, `${h.name} was cut off by the MUX`);
        }
        // The hostile driver itself runs to its end (no SIGSEGV from a form the shim does not decode).
        check(guests.find((g) => g.guest === 'hostile')?.detail === 'exit status 0', 'the hostile driver did not exit 0');
        check(new RegExp(`^ata-hostile: seed ${seed}: .*: done$`, 'm').test(r.stderr), 'the hostile driver printed no summary');
        // Its ungranted ports are denied by the supervisor and counted, every run.
        check((hostileSup?.denials ?? 0) > 0, 'the supervisor counted no denial of the hostile guest');
        check((hostileMux?.accesses ?? 0) > 0, 'the MUX saw no access of the hostile guest');
        if (problems.length) console.error(`${problems.map((p) => `FAIL: ${p}`).join('\n')}\n${report}`);
        else console.log(report.split('\nguest output:')[0]);
        expect(problems, `seed ${seed}: see the report above (replay: CHAOS_SEEDS=${seed} CHAOS_KEEP=1 npx vitest run test/chaos-hostile.test.ts)`).toEqual([]);
      } finally {
        if (!process.env.CHAOS_KEEP) rmSync(dir, { recursive: true, force: true });
      }
    }, RUN_TIMEOUT_MS + 20_000);
  }
});
