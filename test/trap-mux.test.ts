// Three unmodified user-mode ATA drivers (test/drivers/ata-*.c under the trap shim) share
// one disk (the built-in ATA model, and QEMU's PIIX3 IDE) through the ATA MUX, each in its
// own partition window. All verify their data; and when one is SIGKILLed in the middle of
// a transfer, the MUX runs its reset path and the other two still finish verified.
import { type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import ataMux from '../machines/ata/index.ts';
import roundRobin from '../policies/round-robin.ts';
import { parseConfig } from '../src/config/load.ts';
import { createMux, type MuxStats } from '../src/mux/engine.ts';
import { Supervisor } from '../src/supervisor.ts';
import { runTrapped, spawnTrapped, TRAP_BUILD_DIR } from '../src/trap/user.ts';
import { qemuMissingReason } from './helpers/qemu.ts';
import { titled } from './helpers/requires.ts';
import { buildTrap } from './helpers/trap-build.ts';

const ATA_PIO = `${TRAP_BUILD_DIR}/ata-pio`;
const WINDOW = 2048; // sectors per guest

/** The word ata-pio.c writes at word i of guest LBA lba (its `pattern`, pass 0). */
function patternWord(seed: number, lba: number, i: number): number {
  const x = (Math.imul(lba, 2654435761) + Math.imul(i, 40503) + Math.imul(seed, 97)) >>> 0;
  return (x ^ (x >>> 16)) & 0xffff;
}

type DiskKind = 'ata' | 'qemu-ide';

async function startSupervisor(dir: string, kind: DiskKind): Promise<{ sup: Supervisor; socket: string }> {
  const image = join(dir, 'disk.img');
  writeFileSync(image, Buffer.alloc((1 + 3 * WINDOW) * 512 + (1 << 20)));
  const socket = join(dir, 'sock');
  const guests = ['g1', 'g2', 'g3'].map((name, i) => ({ name, grants: [{ device: 'ide', window: { startLba: 1 + i * WINDOW, sectors: WINDOW } }] }));
  const backend = kind === 'ata' ? { type: 'file' as const, path: image } : { type: 'qemu' as const, image };
  const config = parseConfig({ socket, devices: [{ id: 'ide', kind, backend }], guests });
  const sup = new Supervisor({ config, createRouter: (id) => createMux(ataMux, { deviceId: id, policy: roundRobin({ quantumNs: 1_000_000 }) }) });
  await sup.listen();
  return { sup, socket };
}

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (pattern.test(out)) resolve(out);
    });
    child.once('exit', (code, signal) => reject(new Error(`exited (${code ?? signal}) before ${pattern}: ${out}`)));
  });
}

// The built-in ATA model, and QEMU's PIIX3 IDE over qtest when QEMU is installed.
const KINDS: DiskKind[] = ['ata', 'qemu-ide'];
const skipReason = (kind: DiskKind): string | null => (kind === 'qemu-ide' ? qemuMissingReason() : null);

for (const kind of KINDS) describe.skipIf(skipReason(kind) !== null)(titled(`three user-mode ATA drivers through the MUX (${kind})`, skipReason(kind)), () => {
  let dir = '';
  let sup: Supervisor | null = null;
  beforeAll(() => buildTrap());
  afterEach(async () => {
    await sup?.close();
    sup = null;
    rmSync(dir, { recursive: true, force: true });
  });

  it('each sees only its window and verifies its data', async () => {
    dir = mkdtempSync(join(tmpdir(), 'muxtrap-mux-'));
    const s = await startSupervisor(dir, kind);
    sup = s.sup;
    const runs = await Promise.all(
      ['g1', 'g2', 'g3'].map((guest, i) => runTrapped(ATA_PIO, ['--sectors', '48', '--batch', '4', '--seed', String(i + 1)], { socket: s.socket, guest })),
    );
    for (const r of runs) {
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(new RegExp(`${WINDOW} sectors; wrote and read 48 sectors .*: verified`));
      expect(r.code).toBe(0);
    }
    const mux = sup.stats().devices[0] as MuxStats;
    expect(mux.unsafeSwitches).toBe(0);
    expect(mux.perGuest.map((g) => g.faults)).toEqual([0, 0, 0]);
    // On the disk, each guest's sectors sit at its window's start (flushed by the driver).
    const disk = readFileSync(join(dir, 'disk.img'));
    for (let g = 0; g < 3; g++) {
      for (const lba of [0, 47]) {
        const at = (1 + g * WINDOW + lba) * 512;
        expect([disk.readUInt16LE(at), disk.readUInt16LE(at + 510)]).toEqual([patternWord(g + 1, lba, 0), patternWord(g + 1, lba, 255)]);
      }
    }
    expect(disk.readUInt16LE(0)).toBe(0); // sector 0 is nobody's
  });

  it('three bus-master DMA drivers each move data only through their own DMA memory', async () => {
    dir = mkdtempSync(join(tmpdir(), 'muxtrap-mux-'));
    const s = await startSupervisor(dir, kind);
    sup = s.sup;
    const runs = await Promise.all(
      ['g1', 'g2', 'g3'].map((guest, i) => runTrapped(`${TRAP_BUILD_DIR}/ata-dma`, ['--sectors', '48', '--batch', '8', '--seed', String(i + 11)], { socket: s.socket, guest })),
    );
    for (const r of runs) {
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/DMA wrote and read 48 sectors .*: verified/);
      expect(r.code).toBe(0);
    }
    const mux = sup.stats().devices[0] as MuxStats;
    expect(mux.unsafeSwitches).toBe(0);
    expect(mux.perGuest.map((g) => [g.faults, g.dmaRefused])).toEqual([[0, 0], [0, 0], [0, 0]]);
  });

  it('a driver killed mid-transfer is cut off by the reset path; the others finish verified', async () => {
    dir = mkdtempSync(join(tmpdir(), 'muxtrap-mux-'));
    const s = await startSupervisor(dir, kind);
    sup = s.sup;
    const victim = spawnTrapped(ATA_PIO, ['--pause-mid-write', '--seed', '9'], { socket: s.socket, guest: 'g2', stdio: ['ignore', 'pipe', 'pipe'] });
    await waitForLine(victim, /paused mid-transfer/);
    const others = ['g1', 'g3'].map((guest, i) => runTrapped(ATA_PIO, ['--sectors', '32', '--batch', '4', '--seed', String(i + 1)], { socket: s.socket, guest }));
    // The others reach the disk and stall behind g2 (a fixed sleep could end before they
    // start), unless the watchdog has cut g2 off already (a driver started very late).
    const stats = (g: string) => (sup!.stats().devices[0] as MuxStats).perGuest.find((p) => p.guest === g);
    const stalled = (g: string) => (stats(g)?.stalls ?? 0) > 0;
    while (!(stalled('g1') && stalled('g3')) && !stats('g2')?.faulted) await new Promise((r) => setTimeout(r, 10));
    const exited = new Promise((r) => victim.once('exit', r));
    victim.kill('SIGKILL');
    await exited;
    const runs = await Promise.all(others);
    for (const r of runs) {
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/wrote and read 32 sectors .*: verified/);
      expect(r.code).toBe(0);
    }
    const mux = sup.stats().devices[0] as MuxStats;
    expect(mux.resets).toBeGreaterThanOrEqual(1);
    expect(mux.unsafeSwitches).toBe(0);
    expect(mux.perGuest.find((g) => g.guest === 'g2')?.faulted).toBe(true);
    expect(mux.perGuest.filter((g) => g.guest !== 'g2').map((g) => g.faulted)).toEqual([false, false]);
  });
});
