// The C NE2000 driver (native/drivers/ne2k-user.c) SIGKILLed halfway through a transmit upload
// on a card it shares with two scripted guests of `muxvisor run`: the others go on exchanging
// frames, and the same guest comes back with a fresh virtual card and talks to both.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runTrapped, spawnTrapped } from '../src/trap/user.ts';
import { readPcap } from './helpers/pcap-read.ts';
import { DRIVER, InProcessRun, MACS, type Name, type NicCounters, buildDrivers, config, driverArgs, parseResult, srcOf } from './helpers/nic-exec.ts';

describe('the C NE2000 driver killed mid-transmit', () => {
  let dir = '';
  let run: InProcessRun | null = null;

  beforeAll(() => buildDrivers());

  afterEach(async () => {
    await run?.kill();
    run = null;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a C driver SIGKILLed halfway through a transmit upload leaves the card working for the other guests (and for a new driver)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'muxvisor-nicexec-'));
    const socket = join(dir, 'mv.sock');
    run = await InProcessRun.start(config(dir, {}));
    // The program under the shim as `muxvisor exec --socket` starts it (test/nic-exec.test.ts
    // runs exec itself).
    const victim = spawnTrapped(DRIVER, driverArgs('--pause-mid-transmit', '10').slice(1), { socket, guest: 'drv', stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const ended = new Promise<NodeJS.Signals | number | null>((res) => victim.once('exit', (code, sig) => res(sig ?? code)));
    const paused = new Promise<void>((res) =>
      victim.stdout!.setEncoding('utf8').on('data', (t: string) => {
        output += t;
        if (/paused mid-transmit/.test(output)) res();
      }),
    );
    victim.stderr!.setEncoding('utf8').on('data', (t: string) => (output += t));
    await Promise.race([paused, ended.then((how) => Promise.reject(new Error(`the driver ended (${how}) before pausing: ${output}`)))]);
    victim.kill('SIGKILL');
    const killedAt = Date.now() * 1000;
    expect(await ended).toBe('SIGKILL');
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
