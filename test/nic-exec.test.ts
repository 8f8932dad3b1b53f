// An unmodified C NE2000 driver (native/drivers/ne2k-user.c: iopl, a conf1 scan for 10ec:8029,
// in/out/insl/outsl, /dev/uio0 or ISR polling) under the trap shim, sharing one card (NIC
// router, switch backend) with two scripted ne2k guests of `muxvisor run`: started by the
// config (`run: {type: 'user'}`, polling) or joining with `muxvisor exec --socket` (UIO
// interrupts). Frames flow both ways and are checked by every driver; the counters, the
// captures and the drivers' own reports agree; the C driver's spoofed frame is dropped and
// counted. The driver killed mid-transmit: test/nic-exec-kill.test.ts.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DRIVER, InProcessRun, RunProcess, buildDrivers, checkExchange, config, driverArgs, parseResult, runCli } from './helpers/nic-exec.ts';

describe('an unmodified C NE2000 driver shares the card with scripted guests', () => {
  let dir = '';
  let run: RunProcess | InProcessRun | null = null;

  beforeAll(() => buildDrivers());

  afterEach(() => {
    run?.kill();
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

  it('interrupts from /dev/uio0, joining with muxvisor exec --socket: the same checks', async () => {
    dir = mkdtempSync(join(tmpdir(), 'muxvisor-nicexec-'));
    // The supervisor and the scripted guests as `run` has them, in this process: one CLI start-up
    // (exec's) instead of two on a loaded machine.
    run = await InProcessRun.start(config(dir, {}));
    const r = await runCli(['exec', '--socket', join(dir, 'mv.sock'), '--guest', 'drv', '--', ...driverArgs('--spoof')]).done;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await run.finish();
    checkExchange(dir, run.events, parseResult(r.stdout), 'irq');
  }, 55_000);
});
