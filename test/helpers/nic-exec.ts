// Shared by test/nic-exec*.test.ts: a `muxvisor run` of a shared NE2000 (switch backend,
// capture on) with the C driver native/drivers/ne2k-user.c as guest `drv` and two scripted
// ne2k guests, the driver's RESULT line, and the checks of what every party reports.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { DeviceRegistry } from '../../src/devices/registry.ts';
import { launchGuests } from '../../src/launch/guests.ts';
import type { LaunchedGuest } from '../../src/launch/outcome.ts';
import { silentLogger } from '../../src/log.ts';
import type { NicGuestCounters } from '../../src/mux/nic/counters.ts';
import { muxRouterFactory } from '../../src/mux/router-factory.ts';
import { Supervisor } from '../../src/supervisor.ts';
import { buildTrap } from './trap-build.ts';
import { readPcap } from './pcap-read.ts';

export const CLI = fileURLToPath(new URL('../../src/bin/muxvisor.mjs', import.meta.url));
export const DRIVERS = fileURLToPath(new URL('../../native/drivers', import.meta.url));
export const DRIVER = join(DRIVERS, 'build', 'ne2k-user');
export const MACS = { drv: '52:54:00:12:34:03', g1: '52:54:00:12:34:01', g2: '52:54:00:12:34:02' } as const;
export type Name = keyof typeof MACS;
export const SPOOF_SEQ = 0xdeadbeef;
/**
 * The scripted guests send until `run` is stopped (its SIGINT ends them: they drain, check and
 * report), so the C driver hears them however long the loaded machine takes to start it. They
 * flood (no pause between rounds, see config below).
 */
export const SCRIPTED_SECONDS = 300;

export type NicCounters = NicGuestCounters;
export interface Stopped {
  stats: { devices: { device: string; switches: number; perGuest: { guest: string; nic: NicCounters }[] }[] };
}
export type Event = { event: string; guest?: string; ok?: boolean; detail?: string } & Partial<Stopped>;


/** The events of a run (as `run --json` prints them) and a wait for one of them. */
abstract class RunEvents {
  readonly events: Event[] = [];
  private readonly waiters: (() => void)[] = [];

  protected push(e: Event): void {
    this.events.push(e);
    this.waiters.splice(0).forEach((w) => w());
  }

  protected abstract ended(): boolean;
  protected abstract diagnostics(): string;

  /** Resolves once an event matching `pred` has come. */
  async until(pred: (e: Event) => boolean, what: string, ms = 45_000): Promise<Event> {
    const deadline = Date.now() + ms;
    for (;;) {
      const e = this.events.find(pred);
      if (e) return e;
      if (this.ended() || Date.now() > deadline) throw new Error(`run: no ${what} (${this.diagnostics()})`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  /** Stops the scripted guests (they drain, check and report), then the `stopped` statistics. */
  abstract finish(): Promise<Stopped>;
  /** Ends the run at once (a test that failed midway). */
  abstract kill(): Promise<void>;
}

/** A `muxvisor run --json` process and the JSON lines it printed. */
export class RunProcess extends RunEvents {
  stderr = '';
  readonly proc: ChildProcess;

  constructor(config: string) {
    super();
    this.proc = spawn(process.execPath, [CLI, '--json', '--log-level', 'warn', 'run', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        this.push(JSON.parse(buf.slice(0, nl)) as Event);
        buf = buf.slice(nl + 1);
      }
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
  }

  protected ended(): boolean {
    return this.proc.exitCode !== null;
  }

  protected diagnostics(): string {
    return `stderr: ${this.stderr.slice(-2000)}`;
  }

  /** SIGINT, as a user stops `run`. */
  async finish(): Promise<Stopped> {
    this.proc.kill('SIGINT');
    return (await this.until((e) => e.event === 'stopped', 'stopped event')) as Stopped;
  }

  async kill(): Promise<void> {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

/**
 * What `muxvisor run` does, in this process (the same config file, router factory, supervisor
 * and guest launcher, no CLI start-up): for the tests whose C driver joins from outside.
 */
export class InProcessRun extends RunEvents {
  private sup: Supervisor | null = null;
  private launched: LaunchedGuest[] = [];
  private closed = false;

  static async start(configFile: string): Promise<InProcessRun> {
    const r = new InProcessRun();
    const registry = new DeviceRegistry();
    const config = await loadConfig(configFile, { knownKinds: registry.kinds() });
    const createRouter = await muxRouterFactory(config);
    // As under `run`: a guest that connects by itself must name its credential (`auth`).
    r.sup = new Supervisor({ config, registry, createRouter, configSource: configFile, defaultAuth: null });
    await r.sup.listen();
    r.push({ event: 'listening' });
    r.launched = await launchGuests(r.sup, config, config.socket, silentLogger);
    for (const l of r.launched) void l.done.then((o) => r.push({ event: 'guest', ...o }));
    return r;
  }

  protected ended(): boolean {
    return this.closed;
  }

  protected diagnostics(): string {
    return 'in-process supervisor';
  }

  async finish(): Promise<Stopped> {
    for (const l of this.launched) l.stop();
    await Promise.all(this.launched.map((l) => l.done));
    // The JSON `run` prints: its per-guest nic counters are what the tests read.
    const stats = JSON.parse(JSON.stringify(this.sup!.stats())) as Stopped['stats']; // started before finish
    await this.close();
    const stopped = { event: 'stopped', stats };
    this.push(stopped);
    return stopped;
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.launched) l.stop();
    await this.sup?.close();
  }

  kill(): Promise<void> {
    return this.close();
  }
}

/** A command's exit status and output. */
export function runCli(args: string[], onStdout?: (text: string) => void): { done: Promise<{ code: number | null; stdout: string; stderr: string }>; proc: ChildProcess } {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => ((stdout += s), onStdout?.(stdout)));
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((r) => proc.once('exit', (code, sig) => r({ code: code ?? 128 + (sig === 'SIGKILL' ? 9 : 0), stdout, stderr })));
  return { done, proc };
}

export interface DriverResult {
  mode: string;
  sent: number;
  sentBytes: number;
  spoofSent: number;
  received: number;
  receivedBytes: number;
  bad: number;
  irqs: number;
  from: Record<string, number>;
  verified: boolean;
}

export function parseResult(text: string): DriverResult {
  const line = /^RESULT ne2k-user .*$/m.exec(text)?.[0];
  if (!line) throw new Error(`no RESULT line in the driver's output:\n${text.slice(-3000)}`);
  const field = (k: string) => /^\d+$/.test(v(k)) ? Number(v(k)) : NaN;
  const v = (k: string) => new RegExp(`\\b${k}=(\\S+)`).exec(line)?.[1] ?? '';
  const from = Object.fromEntries(v('from').split(',').map((p) => p.split('/')).map(([mac, n]) => [mac, Number(n)]));
  return {
    mode: v('mode'), sent: field('sent'), sentBytes: field('sentBytes'), spoofSent: field('spoofSent'), received: field('received'),
    receivedBytes: field('receivedBytes'), bad: field('bad'), irqs: field('irqs'), from, verified: line.endsWith(' verified'),
  };
}

// The scripted guests flood (gapMs 0, NIC_EXEC_GAP_MS to change it): the trapped driver still gets
// its turns because an in-process guest yields the event loop every 200 µs (Supervisor.attachLocalGuest).
export function config(dir: string, drv: { argv?: string[] }): string {
  const scripted = (name: 'g1' | 'g2', other: 'g1' | 'g2') => ({
    name,
    run: { type: 'scripted', driver: 'ne2k', options: { seconds: SCRIPTED_SECONDS, peers: [MACS[other], MACS.drv], gapMs: Number(process.env.NIC_EXEC_GAP_MS ?? 0) } },
    grants: [{ device: 'nic0', mac: MACS[name] }],
  });
  const file = join(dir, 'nic.json');
  writeFileSync(
    file,
    JSON.stringify({
      socket: join(dir, 'mv.sock'),
      devices: [{ id: 'nic0', kind: 'ne2k', backend: { type: 'switch' }, properties: { capture: join(dir, 'cap') } }],
      guests: [
        // The C driver first: its process starts while the scripted guests begin.
        { name: 'drv', ...(drv.argv ? { run: { type: 'user', argv: drv.argv } } : { auth: { uid: process.getuid!() } }), grants: [{ device: 'nic0', mac: MACS.drv }] },
        scripted('g1', 'g2'),
        scripted('g2', 'g1'),
      ],
    }),
  );
  return file;
}

export const driverArgs = (...extra: string[]) => [DRIVER, '--peer', MACS.g1, '--peer', MACS.g2, '--frames', '40', ...extra];
export const srcOf = (f: Uint8Array) => [...f.subarray(6, 12)].map((b) => b.toString(16).padStart(2, '0')).join(':');
export const seqOf = (f: Uint8Array) => (f.length >= 22 ? new DataView(f.buffer, f.byteOffset).getUint32(18) : -1);
export const hexOf = (f: Uint8Array) => Buffer.from(f).toString('hex');

/** Everything the C driver and the scripted guests did, checked against each other. */
export function checkExchange(dir: string, events: Event[], r: DriverResult, mode: 'irq' | 'poll'): void {
  for (const g of ['g1', 'g2']) {
    const outcome = events.find((e) => e.event === 'guest' && e.guest === g);
    expect(outcome, `${g}: ${outcome?.detail}`).toMatchObject({ ok: true });
  }
  expect(r).toMatchObject({ mode, verified: true, bad: 0, spoofSent: 1 });
  if (mode === 'irq') expect(r.irqs).toBeGreaterThan(0);
  else expect(r.irqs).toBe(0);
  for (const peer of [MACS.g1, MACS.g2]) expect(r.from[peer], `frames the C driver read from ${peer}`).toBeGreaterThan(0);

  const stopped = events.find((e) => e.event === 'stopped') as Stopped | undefined;
  const nic0 = stopped!.stats.devices.find((d) => d.device === 'nic0')!;
  expect(nic0.switches).toBe(0);
  const nic = Object.fromEntries(nic0.perGuest.map((g) => [g.guest, g.nic])) as Record<Name, NicCounters>;
  // The router's counters for the C driver are what it says it did: sent (the spoofed frame
  // apart), and read — it drains its ring until quiet, so every stored frame was read.
  expect(nic.drv).toMatchObject({ txPackets: r.sent, txBytes: r.sentBytes, spoofed: 1, rxPackets: r.received, rxBytes: r.receivedBytes, txInvalid: 0 });
  for (const g of ['g1', 'g2'] as const) {
    const sent = Number(/^(\d+) frames sent/.exec(events.find((e) => e.event === 'guest' && e.guest === g)!.detail!)?.[1]);
    expect(nic[g]).toMatchObject({ txPackets: sent, spoofed: 0, txInvalid: 0 });
  }

  // The captures: per guest, what it sent (its own source MAC) and what its ring stored.
  const cap = Object.fromEntries((Object.keys(MACS) as Name[]).map((n) => [n, readPcap(join(dir, 'cap', `${n}.pcap`)).map((p) => p.frame)])) as Record<Name, Uint8Array[]>;
  for (const n of Object.keys(MACS) as Name[]) {
    const sent = cap[n].filter((f) => srcOf(f) === MACS[n]);
    expect(sent.length, `${n}: frames sent in its capture`).toBe(nic[n].txPackets);
    expect(cap[n].length - sent.length, `${n}: frames stored in its capture`).toBe(nic[n].rxPackets);
    for (const f of cap[n]) expect(seqOf(f), `${n}: the spoofed frame got through`).not.toBe(SPOOF_SEQ);
  }
  // Both ways: frames of the C driver stored in each scripted guest's ring, and of each
  // scripted guest in the C driver's, byte for byte what the sender sent.
  for (const [from, to] of [['drv', 'g1'], ['drv', 'g2'], ['g1', 'drv'], ['g2', 'drv']] as [Name, Name][]) {
    const sentBy = new Set(cap[from].filter((f) => srcOf(f) === MACS[from]).map(hexOf));
    const got = cap[to].filter((f) => srcOf(f) === MACS[from]);
    expect(got.length, `${from} -> ${to}`).toBeGreaterThan(0);
    for (const f of got) expect(sentBy.has(hexOf(f)), `${from} -> ${to}: a stored frame ${from} never sent`).toBe(true);
  }
}


/** The shim, and the drivers of native/drivers (make is a no-op when they are built). */
export function buildDrivers(): void {
  buildTrap();
  execFileSync('flock', [join(tmpdir(), 'muxvisor-native-make.lock'), 'make', '-s', '-C', DRIVERS], { stdio: 'inherit' });
}
