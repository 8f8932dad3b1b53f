// Acceptance of unmodified Linux guests on muxvisor's shared disk: `muxvisor run
// --exit-when-done` starts three guest QEMUs (the Linux guest kit, TCG) at once on one raw
// image, each with its own window (64 MiB; 16 MiB for the PIO guest, see GUESTS). Each QEMU's disk is an x-pci-proxy-dev served by
// muxvisor through the MUX (native-mode PCI IDE; ata_piix binds it), its interrupt driven over
// the QEMU's qtest socket. Each guest runs the kit's disk workload (ext4 with its files, fsck,
// a raw pattern after the file system), two in DMA (MWDMA2), one in PIO. Afterwards the host
// extracts each window with dd and checks it as test/linux-kit.test.ts checks a whole image.

import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { mpqemuAddonMissing } from '../src/trap/mpqemu/native.ts';
import { checkImage, parseKitConsole } from './helpers/linux-kit-check.ts';
import { missing, titled } from './helpers/requires.ts';

const why = missing('qemu', 'linux-kit', 'e2fsprogs') ?? mpqemuAddonMissing();
const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'src', 'bin', 'muxvisor.mjs');

// Through the proxy each 4-byte PIO data access is one message round trip (QEMU's proxy has
// no string I/O): about 20 s per MiB here, against well under a second in DMA. So the PIO
// guest gets a 16 MiB window and one file (about 4 MiB of I/O); the DMA guests 64 MiB and 8.
const GUESTS = [
  { name: 'lin1', pio: false, mib: 64, files: 8 },
  { name: 'lin2', pio: true, mib: 16, files: 1 },
  { name: 'lin3', pio: false, mib: 64, files: 8 },
];
const SECTORS_PER_MIB = 2048;
const startMib = (i: number): number => GUESTS.slice(0, i).reduce((s, g) => s + g.mib, 0);

interface Event {
  event: string;
  guest?: string;
  ok?: boolean;
  detail?: string;
  signal?: string;
  stats?: { devices: { unsafeSwitches: number; switches: number; faults: number; perGuest: { guest: string; faults: number; resets: number }[] }[] };
}

describe.skipIf(why !== null)(titled('Linux guests share one disk through muxvisor', why), () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'muxvisor-linux-guests-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('three Linux guests at once, each in its own window: disk workload ok, every window checks clean from the host', async ({ expect }) => {
    const image = join(dir, 'shared.img');
    writeFileSync(image, '');
    truncateSync(image, startMib(GUESTS.length) * 1024 * 1024); // sparse
    const config = {
      socket: join(dir, 'mv.sock'),
      devices: [
        {
          id: 'disk0',
          kind: 'ata',
          backend: { type: 'file', path: image },
          // A PIO block is 2,048 proxied 4-byte accesses (a round trip each, TCG vCPUs on two
          // loaded cores): seconds, not the default deadline's worth, out of a safe state.
          properties: { deadlineNs: 60_000_000_000 },
        },
      ],
      guests: GUESTS.map((g, i) => ({
        name: g.name,
        run: { type: 'qemu', append: `muxvisor.workload=disk muxvisor.guest=${g.name} muxvisor.files=${g.files}${g.pio ? ' muxvisor.pio=1' : ''}`, console: join(dir, `${g.name}.log`) },
        grants: [{ device: 'disk0', window: { startLba: startMib(i) * SECTORS_PER_MIB, sectors: g.mib * SECTORS_PER_MIB } }],
      })),
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const t0 = performance.now();
    const consoleOf = (name: string): string[] => readFileSync(join(dir, `${name}.log`), 'latin1').replace(/\r/g, '').split('\n');
    let stdout = '';
    try {
      ({ stdout } = await run(process.execPath, [CLI, '--log-level', 'warn', '--json', 'run', join(dir, 'config.json'), '--exit-when-done'], {
        timeout: 420_000,
        maxBuffer: 16 << 20,
      }));
    } catch (e) {
      // The run folder goes with the test: each guest's console tail now, or the cause is lost.
      for (const g of GUESTS) {
        const lines = existsSync(join(dir, `${g.name}.log`)) ? consoleOf(g.name) : ['(no console log)'];
        console.error(`${g.name} console (last 60 lines):\n${lines.slice(-60).join('\n')}`);
      }
      throw e;
    }
    const wallS = (performance.now() - t0) / 1000;
    const events = stdout.trim().split('\n').map((l) => JSON.parse(l) as Event);
    const outcomes = events.filter((e) => e.event === 'guest');
    for (const o of outcomes) console.info(`${o.guest}: ${o.ok ? 'ok' : 'FAILED'}: ${o.detail}`);
    console.info(`muxvisor run with ${GUESTS.length} Linux guests: ${wallS.toFixed(1)} s wall`);
    expect(outcomes.map((o) => o.guest).sort()).toEqual(GUESTS.map((g) => g.name));
    for (const o of outcomes) expect(o.ok, `${o.guest}: ${o.detail}\n${consoleOf(o.guest!).slice(-40).join('\n')}`).toBe(true);

    const stopped = events.find((e) => e.event === 'stopped')!;
    expect(stopped.signal).toBe('done');
    const disk = stopped.stats!.devices[0];
    expect(disk.unsafeSwitches).toBe(0);
    expect(disk.switches).toBeGreaterThan(GUESTS.length);
    for (const p of disk.perGuest) expect({ guest: p.guest, faults: p.faults, resets: p.resets }).toEqual({ guest: p.guest, faults: 0, resets: 0 });

    for (const [i, g] of GUESTS.entries()) {
      const lines = consoleOf(g.name);
      // ata_piix drives the proxied function in native mode: its own BARs, the function's INTx.
      expect(lines.some((l) => /ata\d+: PATA max MWDMA2 cmd 0x[0-9a-f]+ ctl 0x[0-9a-f]+ bmdma 0x[0-9a-f]+ irq \d+/.test(l)), g.name).toBe(true);
      const kit = parseKitConsole(lines);
      expect(kit.info.get('xfer'), g.name).toBe(g.pio ? 'PIO4' : 'MWDMA2');
      expect(kit.info.get('sectors'), g.name).toBe(String(g.mib * SECTORS_PER_MIB));
      // The window, as the host sees it in the shared image.
      const win = join(dir, `${g.name}.window`);
      execFileSync('dd', [`if=${image}`, `of=${win}`, 'bs=1M', `skip=${startMib(i)}`, `count=${g.mib}`, 'status=none']);
      checkImage(expect, win, g.name, g.files, kit, g.mib * 1024 * 1024);
      rmSync(win);
    }
  }, 450_000);
});
