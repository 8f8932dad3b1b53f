// Mixed guests on one disk (issue: unmodified Linux guests, "Mixed guests"): in one
// `muxvisor run --exit-when-done`, an unmodified Linux (the guest kit's disk workload, DMA,
// TCG), an unmodified C driver trapped by the user-mode shim (test/drivers/ata-dma.c, several
// runs in a row) and a scripted in-process guest share one image, each in its own window. The
// C driver and the scripted guest start when the Linux guest has found its disk, so all three
// work at once. All verify; the Linux window checks clean from the host; no unsafe switch.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { mpqemuAddonMissing } from '../src/trap/mpqemu/native.ts';
import { TRAP_BUILD_DIR } from '../src/trap/user.ts';
import { checkImage, parseKitConsole } from './helpers/linux-kit-check.ts';
import { consoleLines, startRun } from './helpers/linux-run.ts';
import { missing, missingFile, titled } from './helpers/requires.ts';
import { buildTrap } from './helpers/trap-build.ts';

const why = missing('qemu', 'linux-kit', 'e2fsprogs') ?? mpqemuAddonMissing() ?? missingFile(join(TRAP_BUILD_DIR, 'ata-dma'), 'make -C native/trap builds it');

const MIB = 1024 * 1024;
const SECTORS_PER_MIB = 2048;
const LINUX_MIB = 64;
const SMALL = 2048; // sectors: the C driver's and the scripted guest's windows (1 MiB each)
const C_RUNS = 4;
const MARKER = 'MUXVISOR-INFO disk dev='; // the Linux disk workload found its disk

describe.skipIf(why !== null)(titled('a Linux guest, a trapped C driver and a scripted guest share one disk', why), () => {
  let dir = '';
  beforeAll(() => {
    buildTrap();
    dir = mkdtempSync(join(tmpdir(), 'muxvisor-linux-mixed-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('all three verify in one run; the Linux window checks clean; no unsafe switch', async ({ expect }) => {
    const image = join(dir, 'shared.img');
    writeFileSync(image, '');
    truncateSync(image, LINUX_MIB * MIB + 2 * SMALL * 512);
    const linuxConsole = join(dir, 'linux.log');
    const linuxEnd = LINUX_MIB * SECTORS_PER_MIB;
    const ataDma = join(TRAP_BUILD_DIR, 'ata-dma');
    // The C driver: an unmodified program under the trap shim, run C_RUNS times once Linux is at work.
    const cScript = `until grep -q '${MARKER}' '${linuxConsole}' 2>/dev/null; do sleep 0.2; done; for i in $(seq ${C_RUNS}); do '${ataDma}' --sectors 192 --batch 16 --seed $i || exit 1; done`;
    const config = {
      socket: join(dir, 'mv.sock'),
      devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'file', path: image } }],
      guests: [
        {
          name: 'linux',
          run: { type: 'qemu', append: 'muxvisor.workload=disk muxvisor.guest=linux muxvisor.files=4', console: linuxConsole },
          grants: [{ device: 'disk0', window: { startLba: 0, sectors: linuxEnd } }],
        },
        { name: 'cdriver', run: { type: 'user', argv: ['/bin/sh', '-c', cScript] }, grants: [{ device: 'disk0', window: { startLba: linuxEnd, sectors: SMALL } }] },
        {
          name: 'script',
          run: {
            type: 'scripted',
            driver: join(import.meta.dirname, 'fixtures', 'scripted', 'after-marker.ts'),
            options: { waitFile: linuxConsole, waitFor: MARKER, seconds: 8, mode: 'mixed', seed: 7 },
          },
          grants: [{ device: 'disk0', window: { startLba: linuxEnd + SMALL, sectors: SMALL } }],
        },
      ],
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const run = startRun(join(dir, 'config.json'), 400_000);
    const end = await run.exited;
    const tail = (): string => `${consoleLines(linuxConsole).slice(-40).join('\n')}\n--- stderr:\n${run.stderr().slice(-3000)}`;
    expect(end.timedOut, `the run hung\n${tail()}`).toBe(false);
    const events = run.events();
    const outcomes = events.filter((e) => e.event === 'guest');
    for (const o of outcomes) console.info(`${o.guest} (${o.how}): ${o.ok ? 'ok' : 'FAILED'}: ${o.detail}`);
    expect(outcomes.map((o) => o.guest).sort()).toEqual(['cdriver', 'linux', 'script']);
    for (const o of outcomes) expect(o.ok, `${o.guest}: ${o.detail}\n${tail()}`).toBe(true);
    const verified = run.stderr().split('\n').filter((l) => /^ata-dma: model "[^"]*", 2048 sectors; DMA wrote and read 192 sectors in \d+ ms, \d+ interrupts: verified$/.test(l));
    expect(verified.length, 'each run of the C driver verified its window').toBe(C_RUNS);
    expect(outcomes.find((o) => o.guest === 'script')!.detail).toMatch(/ 0 errors$/);

    const stopped = events.find((e) => e.event === 'stopped')!;
    expect(stopped.signal).toBe('done');
    const disk = stopped.stats!.devices[0];
    expect(disk.unsafeSwitches).toBe(0);
    const per = new Map(disk.perGuest.map((p) => [p.guest, p]));
    // Work at the same time: the device went back and forth between them.
    for (const name of ['linux', 'cdriver', 'script']) {
      expect(per.get(name)?.faults, name).toBe(0);
      expect(per.get(name)?.grants, `${name} was granted the device more than once`).toBeGreaterThan(1);
    }

    const kit = parseKitConsole(consoleLines(linuxConsole));
    const win = join(dir, 'linux.window');
    execFileSync('dd', [`if=${image}`, `of=${win}`, 'bs=1M', `count=${LINUX_MIB}`, 'status=none']);
    checkImage(expect, win, 'linux', 4, kit, LINUX_MIB * MIB);
  }, 420_000);
});
