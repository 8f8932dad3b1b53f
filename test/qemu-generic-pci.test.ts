// The generic `qemu` kind on a PCI device with both kinds of BAR (QEMU's e1000: 128 KiB of
// registers in memory space at BAR0, 64 ports at BAR1): the guest's config space carries the
// function's identity read from QEMU, its BARs size as QEMU's do and sit where the supervisor
// mapped them, register reads through either BAR reach QEMU's model, and INTA (routed through
// the PIIX3 PIRQ registers) reaches the guest as its IRQ. An unmodified lspci run through
// `muxvisor exec` sees the same function. (Properties, reset and 64-bit BARs:
// test/qemu-generic-kind.test.ts.)

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Access } from '../src/access.ts';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/log.ts';
import { pcicfgAddress } from '../src/pci/view.ts';
import { Supervisor, type LocalGuest } from '../src/supervisor.ts';
import { buildTrap } from './helpers/trap-build.ts';
import { missing, titled } from './helpers/requires.ts';

const why = missing('qemu');
const whyLspci = missing('qemu', 'lspci');
const CLI = fileURLToPath(new URL('../src/bin/muxvisor.mjs', import.meta.url));

// e1000 registers (Linux e1000_hw.h).
const E1000_STATUS = 0x08;
const E1000_ICS = 0xc8; // interrupt cause set
const E1000_IMS = 0xd0; // interrupt mask set
const E1000_IMC = 0xd8; // interrupt mask clear
const E1000_ICR = 0xc0; // interrupt cause read (read clears)
const E1000_ICR_TXDW = 0x1;
const E1000_IOADDR = 0x0; // BAR1 (I/O): address window
const E1000_IODATA = 0x4; // BAR1 (I/O): data window

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 50_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(why !== null)(titled('generic qemu kind on a PCI device: config space, BARs, IRQ', why), () => {
  let dir: string;
  let sup: Supervisor;
  let g: LocalGuest;
  let slot: number;
  const acc = async (a: Access) => {
    const r = await g.access(a);
    if (r.error) throw new Error(`${a.space} ${a.dir} 0x${a.addr.toString(16)}: ${r.error}`);
    return Number(r.value);
  };
  const cfg = (reg: number, size: 1 | 2 | 4 = 4) => acc({ space: 'pcicfg', addr: pcicfgAddress(0, slot, 0, reg), size, dir: 'read' });
  const cfgW = (reg: number, value: number) => acc({ space: 'pcicfg', addr: pcicfgAddress(0, slot, 0, reg), size: 4, dir: 'write', value });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mv-qemu-pci-'));
    const config = parseConfig({
      socket: join(dir, 'mv.sock'),
      devices: [{ id: 'nic', kind: 'qemu', backend: { type: 'qemu' }, properties: { device: 'e1000', args: 'romfile=', irq: 10 } }],
      // g is attached in-process; lspci joins as l (both read the same device: shared).
      guests: ['g', 'l'].map((name) => ({ name, auth: { uid: process.getuid!() }, grants: [{ device: 'nic', shared: true }] })),
    });
    sup = new Supervisor({ config, logger: silentLogger });
    await sup.listen();
    g = sup.attachLocalGuest('g');
    slot = Number.parseInt(/^00:([0-9a-f]{2})\.0$/.exec(sup.layout().find((d) => d.id === 'nic')!.pci!)![1], 16);
  });
  afterAll(async () => {
    await sup?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the guest\'s config space carries the function\'s identity as QEMU reports it', async () => {
    expect(await cfg(0x00)).toBe(0x100e_8086); // 8086:100e, the 82540EM QEMU models
    expect((await cfg(0x08)) >>> 8).toBe(0x020000); // class: Ethernet controller
    expect(await cfg(0x2c)).toBe(0x1100_1af4); // QEMU's subsystem ids
    expect(await cfg(0x3d, 1)).toBe(1); // INTA
    expect(await cfg(0x3c, 1)).toBe(10); // the irq property
  });

  it('the BARs size as QEMU\'s do and sit where the supervisor mapped them', async () => {
    const layout = sup.layout().find((d) => d.id === 'nic')!;
    const bar0 = layout.regions.find((r) => r.name === 'bar0')!;
    const bar1 = layout.regions.find((r) => r.name === 'bar1')!;
    expect(bar0).toMatchObject({ space: 'mmio' });
    expect(bar0.end - bar0.start + 1).toBe(0x20000);
    expect(bar1).toMatchObject({ space: 'pio' });
    expect(bar1.end - bar1.start + 1).toBe(64);
    expect(await cfg(0x10)).toBe(bar0.start); // 32-bit, non-prefetchable memory
    expect(await cfg(0x14)).toBe(bar1.start | 1);
    await cfgW(0x10, 0xffff_ffff);
    expect(await cfg(0x10)).toBe(0xfffe_0000);
    await cfgW(0x14, 0xffff_ffff);
    expect((await cfg(0x14)) & 0xffff).toBe(0xffc1);
    await cfgW(0x10, bar0.start);
    await cfgW(0x14, bar1.start);
    expect(await cfg(0x18)).toBe(0); // no BAR2
  });

  it('registers read through either BAR reach QEMU\'s model, and INTA reaches the guest as its IRQ', async () => {
    const { regions } = sup.layout().find((d) => d.id === 'nic')!;
    const mmio = regions.find((r) => r.name === 'bar0')!.start;
    const io = regions.find((r) => r.name === 'bar1')!.start;
    const status = await acc({ space: 'mmio', addr: mmio + E1000_STATUS, size: 4, dir: 'read' });
    expect(status & 0x2).toBe(0x2); // STATUS.LU: QEMU's link is up
    // QEMU 7.2's e1000 I/O window is a stub that reads 0: reached, unlike an unmapped port's all-ones.
    await acc({ space: 'pio', addr: io + E1000_IOADDR, size: 4, dir: 'write', value: E1000_STATUS });
    expect(await acc({ space: 'pio', addr: io + E1000_IODATA, size: 4, dir: 'read' })).toBe(0);
    expect(await g.access({ space: 'pio', addr: io + 0x40, size: 4, dir: 'read' })).toEqual({ value: 0xffff_ffff, error: 'denied' });

    expect(g.irqs).toEqual([10]);
    const seen: boolean[] = [];
    const off = g.onIrq((line, level) => line === 10 && seen.push(level));
    await acc({ space: 'mmio', addr: mmio + E1000_IMS, size: 4, dir: 'write', value: E1000_ICR_TXDW });
    await acc({ space: 'mmio', addr: mmio + E1000_ICS, size: 4, dir: 'write', value: E1000_ICR_TXDW });
    for (let i = 0; i < 100 && !seen.includes(true); i++) await new Promise((r) => setTimeout(r, 10));
    expect(seen).toContain(true);
    expect(await acc({ space: 'mmio', addr: mmio + E1000_ICR, size: 4, dir: 'read' }) & E1000_ICR_TXDW).toBe(E1000_ICR_TXDW);
    for (let i = 0; i < 100 && seen.at(-1) !== false; i++) await new Promise((r) => setTimeout(r, 10));
    expect(seen.at(-1)).toBe(false); // reading ICR cleared the cause: the line fell
    await acc({ space: 'mmio', addr: mmio + E1000_IMC, size: 4, dir: 'write', value: 0xffff_ffff });
    off();
  });

  it.skipIf(whyLspci !== null)(titled('an unmodified lspci through muxvisor exec sees the function and its BARs', whyLspci), async () => {
    buildTrap();
    const r = await cli(['exec', '--socket', join(dir, 'mv.sock'), '--guest', 'l', '--', 'lspci', '-A', 'intel-conf1', '-nn', '-v']);
    // lspci -v looks for kernel modules and says so when it finds none: nothing else on stderr.
    expect(r.stderr.split('\n').filter((l) => l && !/libkmod/.test(l))).toEqual([]);
    expect(r.code).toBe(0);
    const { regions } = sup.layout().find((d) => d.id === 'nic')!;
    expect(r.stdout).toMatch(/Ethernet controller \[0200\]: .*\[8086:100e\]/);
    expect(r.stdout).toContain(`Memory at ${regions.find((x) => x.name === 'bar0')!.start.toString(16)} (32-bit, non-prefetchable)`);
    expect(r.stdout).toContain(`I/O ports at ${regions.find((x) => x.name === 'bar1')!.start.toString(16)}`);
    expect(r.stdout).toMatch(/IRQ 10/);
  });
});
