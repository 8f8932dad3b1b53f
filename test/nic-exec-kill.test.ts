// The C NE2000 driver (native/drivers/ne2k-user.c) SIGKILLed halfway through a transmit upload
// on a card it shares with two scripted guests of `muxvisor run`: the others go on exchanging
// frames, and the same guest comes back with a fresh virtual card and talks to both.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runTrapped } from '../src/trap/user.ts';
import { readPcap } from './helpers/pcap-read.ts';
import { DRIVER, MACS, type Name, type NicCounters, RunProcess, buildDrivers, config, driverArgs, parseResult, runCli, srcOf } from './helpers/nic-exec.ts';

describe('the C NE2000 driver killed mid-transmit', () => {
  let dir = '';
  let run: RunProcess | null = null;

  beforeAll(() => buildDrivers());

  afterEach(() => {
    run?.kill();
    run = null;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a C driver SIGKILLed halfway through a transmit upload leaves the card working for the other guests (and for a new driver)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'muxvisor-nicexec-'));
    const socket = join(dir, 'mv.sock');
    run = new RunProcess(config(dir, {}));
    await run.until((e) => e.event === 'listening', 'listening event');
    let paused: (pid: number) => void = () => {};
    const pausedPid = new Promise<number>((res) => (paused = res));
    const victim = runCli(['exec', '--socket', socket, '--guest', 'drv', '--', ...driverArgs('--pause-mid-transmit', '10')], (out) => {
      const m = /paused mid-transmit \(pid (\d+)\)/.exec(out);
      if (m) paused(Number(m[1]));
    });
    const pid = await Promise.race([pausedPid, victim.done.then((e) => Promise.reject(new Error(`the driver ended before pausing: ${e.code} ${e.stderr}`)))]);
    process.kill(pid, 'SIGKILL'); // the driver itself, not its exec
    const killedAt = Date.now() * 1000;
    expect((await victim.done).code).toBe(128 + 9);
    // The same guest comes back with a fresh virtual card and exchanges with both others
    // (numbering its frames on, as the scripted guests remember the last number they saw).
    const again = await runTrapped(DRIVER, driverArgs('--frames', '20', '--first-seq', '100000').slice(1), { socket, guest: 'drv' });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    const r = parseResult(again.stdout);
    for (const peer of [MACS.g1, MACS.g2]) expect(r.from[peer], `frames from ${peer} after the kill`).toBeGreaterThan(0);
    const stopped = await run.finish();
    for (const g of ['g1', 'g2']) {
      const outcome = run.events.find((e) => e.event === 'guest' && e.guest === g);
      expect(outcome, `${g}: ${outcome?.detail}`).toMatchObject({ ok: true });
    }
    const nic = Object.fromEntries(stopped.stats.devices[0].perGuest.map((g) => [g.guest, g.nic])) as Record<Name, NicCounters>;
    // Ten frames before the upload that never finished, none of it; then the new driver's.
    expect(nic.drv).toMatchObject({ txPackets: 10 + r.sent, spoofed: 0, txInvalid: 0 });
    // The scripted guests kept exchanging frames with each other after the kill.
    const after = (to: Name, from: Name) => readPcap(join(dir, 'cap', `${to}.pcap`)).filter((p) => p.us > killedAt && srcOf(p.frame) === MACS[from]).length;
    expect(after('g1', 'g2')).toBeGreaterThan(0);
    expect(after('g2', 'g1')).toBeGreaterThan(0);
  }, 55_000);
});
