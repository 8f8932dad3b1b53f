// Unmodified programs under the user-mode trap shim against the real supervisor, with
// QEMU's PIIX3 IDE (over qtest) as the physical device: lspci through the supervisor's
// PCI view, and the C ATA PIO driver (test/drivers/ata-pio.c) with interrupts through
// the UIO fd, writing and verifying its disk.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { Supervisor } from '../src/supervisor.ts';
import { runTrapped, TRAP_BUILD_DIR } from '../src/trap/user.ts';
import { qemuMissingReason } from './helpers/qemu.ts';
import { buildTrap } from './helpers/trap-build.ts';
import { titled } from './helpers/requires.ts';

const skip = qemuMissingReason();

describe.skipIf(skip !== null)(titled('user-mode trap shim with the supervisor and QEMU IDE', skip), () => {
  let dir = '';
  let socket = '';
  let sup: Supervisor;

  beforeAll(async () => {
    buildTrap();
    dir = mkdtempSync(join(tmpdir(), 'muxtrap-sup-'));
    const image = join(dir, 'disk.img');
    writeFileSync(image, Buffer.alloc(2 << 20));
    socket = join(dir, 'sock');
    const config = parseConfig({
      socket,
      devices: [{ id: 'ide', kind: 'qemu-ide', backend: { type: 'qemu', image } }],
      guests: [{ name: 'driver', grants: [{ device: 'ide' }] }, { name: 'nothing' }],
    });
    sup = new Supervisor({ config });
    await sup.listen();
  });

  afterAll(async () => {
    await sup?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lspci -A intel-conf1 lists the granted IDE function', async () => {
    const r = await runTrapped('lspci', ['-A', 'intel-conf1', '-nn'], { socket, guest: 'driver' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const ide = r.stdout.split('\n').filter((l) => l.includes('[8086:7010]'));
    expect(ide).toHaveLength(1);
    expect(ide[0]).toMatch(/IDE interface \[0101\]/);
  });

  it('traces every trapped access of the program on request', async () => {
    const r = await runTrapped('lspci', ['-A', 'intel-conf1', '-n', '-s', '00:00.0'], { socket, guest: 'driver', traceFd: 2 });
    expect(r.code).toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThan(10);
    expect(lines.every((l) => /^pio [rw] 0x[0-9a-f]+\/[124] n=1 v=0x[0-9a-f]+$/.test(l))).toBe(true);
    expect(lines).toContain('pio w 0xcf8/4 n=1 v=0x80000000'); // vendor/device id of 00:00.0
  });

  it('lspci of a guest granted nothing does not show the IDE function', async () => {
    const r = await runTrapped('lspci', ['-A', 'intel-conf1', '-nn'], { socket, guest: 'nothing' });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('8086:7010');
  });

  it('the C ATA bus-master DMA driver moves scattered buffers of its shared DMA memory', async () => {
    const r = await runTrapped(`${TRAP_BUILD_DIR}/ata-dma`, ['--sectors', '40', '--batch', '16', '--seed', '5'], { socket, guest: 'driver' });
    expect(r.stderr).toBe('');
    // 1 IDENTIFY + 3 WRITE DMA + FLUSH + 3 READ DMA + 16 PIO sectors read back
    expect(r.stdout).toMatch(/DMA wrote and read 40 sectors .* 24 interrupts: verified/);
    expect(r.code).toBe(0);
    expect(sup.stats().deviceMetrics.ide).toMatchObject({ dmaBadPrd: 0, dmaRefused: 0 });
  });

  it('a program naming a guest the supervisor does not know is stopped with its refusal', async () => {
    const r = await runTrapped(`${TRAP_BUILD_DIR}/ata-pio`, ['--sectors', '1'], { socket, guest: 'stranger' });
    expect(r.code).toBe(70);
    // The refusal names no guest (peer-auth.ts): not even the one asked for.
    expect(r.stderr).toMatch(/^muxtrap: supervisor refused us: unknown-guest: no guest of that name accepts this peer/);
    expect(r.stdout).toBe('');
  });

  it('the C ATA PIO driver identifies, writes, flushes, reads back and verifies its disk', async () => {
    const r = await runTrapped(`${TRAP_BUILD_DIR}/ata-pio`, ['--sectors', '24', '--batch', '4', '--seed', '7'], { socket, guest: 'driver' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/model "QEMU HARDDISK", 4096 sectors; wrote and read 24 sectors .* 50 interrupts: verified/);
    expect(r.code).toBe(0);
  });
});

describe('user-mode trap shim with the supervisor and the scratch device', () => {
  it('a C driver finds the device by conf1 scan, uses its ports, its sysfs BAR, its IRQ and DMA into shared memory', async () => {
    buildTrap();
    const dir = mkdtempSync(join(tmpdir(), 'muxtrap-scr-'));
    const socket = join(dir, 'sock');
    const sup = new Supervisor({
      config: parseConfig({ socket, devices: [{ id: 'scr', kind: 'scratch' }], guests: [{ name: 'drv', grants: [{ device: 'scr' }] }] }),
    });
    try {
      await sup.listen();
      const r = await runTrapped(`${TRAP_BUILD_DIR}/test-scratch`, [], { socket, guest: 'drv' });
      expect(r.stderr).toBe('');
      expect(r.stdout).not.toContain('FAIL');
      expect(r.stdout).toContain('ok DMA fill reached our memory');
      expect(r.code).toBe(0);
      const dev = sup.stats().devices[0];
      expect(dev.perGuest[0].dmaRefused).toBe(0);
      expect(sup.stats().deviceMetrics.scr).toMatchObject({ badRegister: 0, dmaRefused: 0 });
    } finally {
      await sup.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
