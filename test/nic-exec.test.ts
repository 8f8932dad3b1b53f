// An unmodified C NE2000 driver (native/drivers/ne2k-user.c: iopl, a conf1 scan for 10ec:8029,
// in/out/insl/outsl, /dev/uio0 or ISR polling) under the trap shim, sharing one card (NIC
// router, switch backend) with two scripted ne2k guests of `muxvisor run`: started by the
// config (`run: {type: 'user'}`), polling ISR. Frames flow both ways and are checked by every
// driver; the counters, the captures and the drivers' own reports agree; the C driver's
// spoofed frame is dropped and counted. With UIO interrupts through `muxvisor exec --socket`:
// test/nic-exec-uio.test.ts; killed mid-transmit: test/nic-exec-kill.test.ts.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DRIVER, RunProcess, buildDrivers, checkExchange, config, driverArgs, parseResult } from './helpers/nic-exec.ts';

describe('an unmodified C NE2000 driver shares the card with scripted guests', () => {
  let dir = '';
  let run: RunProcess | null = null;

  beforeAll(() => buildDrivers());

  afterEach(async () => {
    await run?.kill();
    run = null;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('polling ISR, started by the config (run: user): frames both ways, counters and captures agree, the spoofed frame is dropped', async () => {
    expect(existsSync(DRIVER)).toBe(true);
    dir = mkdtempSync(join(tmpdir(), 'muxvisor-nicexec-'));
    run = new RunProcess(config(dir, { argv: driverArgs('--no-irq', '--spoof') }));
    const drv = await run.until((e) => e.event === 'guest' && e.guest === 'drv', 'outcome of drv');
    expect(drv, run.stderr.slice(-3000)).toMatchObject({ ok: true });
    await run.finish();
    // The program's output goes to run's stderr (stdout carries run's JSON).
    checkExchange(dir, run.events, parseResult(run.stderr), 'poll');
  }, 55_000);
});
