// Faults of Linux guests on a shared disk (issue: unmodified Linux guests, "Faults"). One
// `muxvisor run --exit-when-done` with four Linux guests (the guest kit, TCG), each in its own
// window of one image:
//   steady   the disk workload in DMA: must finish and check clean from the host, whatever
//            the others do;
//   killed   streams flushed chunks in DMA; its QEMU is SIGKILLed in the middle of the stream:
//            every chunk it said was flushed is in its window afterwards;
//   panicky  panics its kernel in the middle of a write (sysrq c): its QEMU leaves, counted as
//            a failed guest whose console shows the panic;
//   stalled  streams in PIO (4 KiB commands); its QEMU is SIGSTOPped until the MUX's watchdog
//            cuts it off (it then owns the device out of a safe state: a command it never
//            finishes), then killed.
// The MUX never switches unsafely, and the device serves the steady guest to the end.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { kitStreamChunk } from '../src/guests/linux-kit/content.ts';
import { mpqemuAddonMissing } from '../src/trap/mpqemu/native.ts';
import { checkImage, parseKitConsole } from './helpers/linux-kit-check.ts';
import { consoleLines, qemuPidOf, sleep, startRun, waitFor } from './helpers/linux-run.ts';
import { missing, titled } from './helpers/requires.ts';

const why = missing('qemu', 'linux-kit', 'e2fsprogs') ?? mpqemuAddonMissing();

const MIB = 1024 * 1024;
const SECTORS_PER_MIB = 2048;
const DEADLINE_S = 8; // the MUX watchdog: far above one 4 KiB PIO or 64 KiB DMA command
const CHUNK_KIB = 256;
const GUESTS = [
  { name: 'steady', mib: 64, append: 'muxvisor.workload=disk muxvisor.files=4' },
  { name: 'killed', mib: 32, append: `muxvisor.workload=stream muxvisor.chunkkib=${CHUNK_KIB} muxvisor.bskib=64` },
  { name: 'panicky', mib: 16, append: 'muxvisor.workload=panic muxvisor.panicms=800' },
  { name: 'stalled', mib: 16, append: 'muxvisor.workload=stream muxvisor.chunkkib=16 muxvisor.bskib=4 muxvisor.pio=1' },
] as const;
const startMib = (i: number): number => GUESTS.slice(0, i).reduce((s, g) => s + g.mib, 0);

/** The highest `stream flushed=K` a console printed (0 before the first). */
function flushed(lines: string[]): number {
  let k = 0;
  for (const l of lines) {
    const m = /MUXVISOR-INFO stream flushed=(\d+)/.exec(l);
    if (m) k = Number(m[1]);
  }
  return k;
}

describe.skipIf(why !== null)(titled('Linux guest faults on a shared disk', why), () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'muxvisor-linux-faults-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a SIGKILLed, a panicked and a stalled guest leave the steady one running and verified; flushed data survives; the stall is cut off by the watchdog', async ({ expect }) => {
    const image = join(dir, 'shared.img');
    writeFileSync(image, '');
    truncateSync(image, startMib(GUESTS.length) * MIB);
    const consoleOf = (name: string): string => join(dir, `${name}.log`);
    const config = {
      socket: join(dir, 'mv.sock'),
      devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'file', path: image }, properties: { deadlineNs: DEADLINE_S * 1e9 } }],
      guests: GUESTS.map((g, i) => ({
        name: g.name,
        run: { type: 'qemu', append: `${g.append} muxvisor.guest=${g.name}`, console: consoleOf(g.name) },
        grants: [{ device: 'disk0', window: { startLba: startMib(i) * SECTORS_PER_MIB, sectors: g.mib * SECTORS_PER_MIB } }],
      })),
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const run = startRun(join(dir, 'config.json'), 420_000);
    const dump = (): string => GUESTS.map((g) => `--- ${g.name}:\n${consoleLines(consoleOf(g.name)).slice(-30).join('\n')}`).join('\n');
    try {
      // killed: SIGKILL once it has flushed three chunks and goes on writing.
      expect(await waitFor(() => flushed(consoleLines(consoleOf('killed'))) >= 3, 240_000), `killed never flushed 3 chunks\n${dump()}`).toBe(true);
      const killedPid = qemuPidOf('killed', run.pid);
      expect(killedPid, 'the QEMU of guest killed').not.toBeNull();
      process.kill(killedPid!, 'SIGKILL');

      // stalled: SIGSTOP until the watchdog cuts it off. The stop may catch it between commands
      // (then it owns nothing, or a safe device another guest may take): let it run a moment, again.
      expect(await waitFor(() => flushed(consoleLines(consoleOf('stalled'))) >= 2, 240_000), `stalled never flushed 2 chunks\n${dump()}`).toBe(true);
      const stalledPid = qemuPidOf('stalled', run.pid);
      expect(stalledPid, 'the QEMU of guest stalled').not.toBeNull();
      const cutOff = (): boolean => run.stderr().split('\n').some((l) => l.includes('"guest cut off"') && l.includes('"guest":"stalled"') && l.includes('watchdog'));
      for (let tries = 0; tries < 6 && !cutOff(); tries++) {
        process.kill(stalledPid!, 'SIGSTOP');
        if (await waitFor(cutOff, (DEADLINE_S + 4) * 1000, 250)) break;
        process.kill(stalledPid!, 'SIGCONT');
        await sleep(300 + tries * 200);
      }
      expect(cutOff(), `the watchdog never cut the stopped guest off\n${run.stderr().slice(-3000)}`).toBe(true);
      process.kill(stalledPid!, 'SIGKILL');
    } catch (e) {
      for (const g of GUESTS) {
        const pid = qemuPidOf(g.name, run.pid);
        if (pid) process.kill(pid, 'SIGKILL');
      }
      throw e;
    }

    const end = await run.exited;
    expect(end.timedOut, `the run hung\n${dump()}`).toBe(false);
    const events = run.events();
    const outcome = new Map(events.filter((e) => e.event === 'guest').map((e) => [e.guest!, e]));
    for (const [name, o] of outcome) console.info(`${name}: ${o.ok ? 'ok' : 'FAILED'}: ${o.detail}`);
    expect(outcome.get('steady')?.ok, `steady: ${outcome.get('steady')?.detail}\n${dump()}`).toBe(true);
    expect(outcome.get('killed')).toMatchObject({ ok: false, detail: expect.stringContaining('killed by SIGKILL') });
    expect(outcome.get('stalled')).toMatchObject({ ok: false, detail: expect.stringContaining('killed by SIGKILL') });
    expect(outcome.get('panicky')).toMatchObject({ ok: false, detail: expect.stringContaining('panic') });
    expect(consoleLines(consoleOf('panicky')).some((l) => /Kernel panic - not syncing/.test(l))).toBe(true);

    const stopped = events.find((e) => e.event === 'stopped')!;
    expect(stopped.signal).toBe('done');
    const disk = stopped.stats!.devices[0];
    expect(disk.unsafeSwitches).toBe(0);
    const per = new Map(disk.perGuest.map((p) => [p.guest, p]));
    expect(per.get('stalled')?.faults).toBeGreaterThanOrEqual(1);
    expect(per.get('steady')).toMatchObject({ faults: 0, resets: 0 });

    // steady: its window checks clean from the host.
    const steady = parseKitConsole(consoleLines(consoleOf('steady')));
    const win = join(dir, 'steady.window');
    execFileSync('dd', [`if=${image}`, `of=${win}`, 'bs=1M', `skip=${startMib(0)}`, `count=${GUESTS[0].mib}`, 'status=none']);
    checkImage(expect, win, 'steady', 4, steady, GUESTS[0].mib * MIB);

    // killed and stalled: every chunk each said it had flushed is in its window.
    const img = readFileSync(image);
    for (const [name, chunkKib] of [['killed', CHUNK_KIB], ['stalled', 16]] as const) {
      const i = GUESTS.findIndex((g) => g.name === name);
      const k = flushed(consoleLines(consoleOf(name)));
      expect(k, `${name} flushed chunks`).toBeGreaterThanOrEqual(2);
      for (let c = 0; c < k; c++) {
        const at = startMib(i) * MIB + c * chunkKib * 1024;
        const got = img.subarray(at, at + chunkKib * 1024);
        expect(got.equals(kitStreamChunk(name, c, chunkKib * 1024)), `${name}: chunk ${c} of the ${k} it said were flushed`).toBe(true);
      }
      console.info(`${name}: ${k} flushed chunks of ${chunkKib} KiB on the disk`);
    }
  }, 450_000);
});
