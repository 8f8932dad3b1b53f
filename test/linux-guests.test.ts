// Acceptance of unmodified Linux guests on muxvisor's shared disk: `muxvisor demo --guests 3
// --trap qemu` starts three guest QEMUs (the Linux guest kit, TCG) at once on one raw image,
// each with its own window (64 MiB; 16 MiB for the PIO guest, see planQemuGuests). Each QEMU's
// disk is an x-pci-proxy-dev served by muxvisor through the MUX (native-mode PCI IDE; ata_piix
// binds it), its interrupt driven over the QEMU's qtest socket. Each guest runs the kit's disk
// workload (ext4 with its files, fsck, a raw pattern after the file system), two in DMA
// (MWDMA2), one in PIO. The demo checks every window from the host and says so in its --json
// summary; this test checks each window again on its own (test/helpers/linux-kit-check.ts).

import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { planQemuGuests } from '../src/demo/qemu-disk.ts';
import { mpqemuAddonMissing } from '../src/trap/mpqemu/native.ts';
import { checkImage, parseKitConsole } from './helpers/linux-kit-check.ts';
import { missing, titled } from './helpers/requires.ts';

const why = missing('qemu', 'linux-kit', 'e2fsprogs') ?? mpqemuAddonMissing();
const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'src', 'bin', 'muxvisor.mjs');
const GUESTS = planQemuGuests(3, 'mixed');

interface DemoJson {
  devices: { id: string; switches: number; unsafeSwitches: number; resets: number; perGuest: { guest: string; ops: number; bytes: number; errors: number; verified: boolean }[] }[];
  runFolder: string;
}

describe.skipIf(why !== null)(titled('Linux guests share one disk through muxvisor', why), () => {
  let dir = '';
  let runFolder = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'muxvisor-linux-guests-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    if (runFolder) rmSync(runFolder, { recursive: true, force: true });
  });

  it('muxvisor demo --guests 3 --trap qemu: three Linux guests at once, each in its own window, DMA and PIO: every window checks clean from the host', async ({ expect }) => {
    const image = join(dir, 'shared.img');
    writeFileSync(image, '');
    truncateSync(image, GUESTS.reduce((s, g) => s + g.mib, 0) * 1024 * 1024); // sparse
    const t0 = performance.now();
    let stdout = '';
    try {
      ({ stdout } = await run(process.execPath, [CLI, '--log-level', 'warn', '--json', 'demo', '--guests', '3', '--trap', 'qemu', '--image', image, '--keep'], {
        timeout: 420_000,
        maxBuffer: 16 << 20,
      }));
    } catch (e) {
      // A failed demo still prints its summary (and the run folder it kept): show each console's tail.
      const out = (e as { stdout?: string }).stdout ?? '';
      const folder = /"runFolder":\s*"([^"]+)"/.exec(out)?.[1];
      for (const g of GUESTS) {
        const f = folder ? join(folder, `${g.name}.console.log`) : '';
        console.error(`${g.name} console (last 60 lines):\n${f && existsSync(f) ? readFileSync(f, 'latin1').split('\n').slice(-60).join('\n') : '(none)'}`);
      }
      if (folder) rmSync(folder, { recursive: true, force: true });
      throw e;
    }
    const wallS = (performance.now() - t0) / 1000;
    const demo = JSON.parse(stdout) as DemoJson;
    runFolder = demo.runFolder;
    console.info(`muxvisor demo with ${GUESTS.length} Linux guests: ${wallS.toFixed(1)} s wall; ${JSON.stringify(demo.devices[0].perGuest)}`);
    const disk = demo.devices[0];
    expect(disk.unsafeSwitches).toBe(0);
    expect(disk.switches).toBeGreaterThan(GUESTS.length);
    expect(disk.perGuest.map((p) => p.guest).sort()).toEqual(GUESTS.map((g) => g.name).sort());
    for (const p of disk.perGuest) expect(p, p.guest).toMatchObject({ verified: true, errors: 0 });

    for (const g of GUESTS) {
      const lines = readFileSync(join(runFolder, `${g.name}.console.log`), 'latin1').replace(/\r/g, '').split('\n');
      // ata_piix drives the proxied function in native mode: its own BARs, the function's INTx.
      expect(lines.some((l) => /ata\d+: PATA max MWDMA2 cmd 0x[0-9a-f]+ ctl 0x[0-9a-f]+ bmdma 0x[0-9a-f]+ irq \d+/.test(l) && !/cmd 0x1f0|cmd 0x170/.test(l)), g.name).toBe(true);
      const kit = parseKitConsole(lines);
      expect(kit.info.get('xfer'), g.name).toBe(g.pio ? 'PIO4' : 'MWDMA2');
      expect(kit.info.get('sectors'), g.name).toBe(String(g.mib * 2048));
      // The window, as the host sees it in the shared image.
      const win = join(dir, `${g.name}.window`);
      execFileSync('dd', [`if=${image}`, `of=${win}`, 'bs=1M', `skip=${g.startLba / 2048}`, `count=${g.mib}`, 'status=none']);
      checkImage(expect, win, g.name, g.files, kit, g.mib * 1024 * 1024);
      rmSync(win);
    }
  }, 450_000);
});
