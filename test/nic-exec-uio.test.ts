// The unmodified C NE2000 driver (native/drivers/ne2k-user.c) waiting on /dev/uio0 for its
// interrupts, joining a running supervisor with `muxvisor exec --socket`, shares one card with
// two scripted ne2k guests: the checks of test/nic-exec.test.ts (frames both ways, counters =
// captures = the drivers' reports, the spoofed frame dropped and counted), and interrupts came.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InProcessRun, buildDrivers, checkExchange, config, driverArgs, parseResult, runCli } from './helpers/nic-exec.ts';

describe('an unmodified C NE2000 driver with UIO interrupts under muxvisor exec', () => {
  let dir = '';
  let run: InProcessRun | null = null;

  beforeAll(() => buildDrivers());

  afterEach(async () => {
    await run?.kill();
    run = null;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

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
