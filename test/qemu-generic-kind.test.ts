// The generic `qemu` kind's edges: bad properties are named by their JSON path (at config load)
// or by the QEMU device's own facts (at start); a reset is QEMU's power-on reset (QMP
// system_reset) after which the BARs decode again; a 64-bit memory BAR is placed below 4 GiB.

import { describe, expect, it } from 'vitest';
import { deviceShapeIssues } from '../src/config/device-shapes.ts';
import type { QemuGenericDevice } from '../src/devices/qemu-generic.ts';
import { DeviceRegistry } from '../src/devices/registry.ts';
import { silentLogger } from '../src/log.ts';
import { missing, titled } from './helpers/requires.ts';

const why = missing('qemu');

describe('generic qemu kind: bad properties name the field', () => {
  const issues = (properties: Record<string, unknown>) => deviceShapeIssues([{ id: 'x', kind: 'qemu', backend: { type: 'qemu' }, properties } as never]);

  it('at config load, with the JSON path', async () => {
    expect(await issues({ device: 'pci-serial' })).toEqual([]);
    expect((await issues({})).map((i) => i.path)).toEqual(['devices[0].properties.device']);
    expect((await issues({ device: 'pci serial' }))[0].message).toMatch(/QEMU device name/);
    expect((await issues({ device: 'isa-serial', bus: 'isa', regions: [{ name: 'regs', bar: 0 }, { name: 'x', space: 'pio', base: 0x3f8, size: 8 }] }))[0]).toMatchObject({ path: 'devices[0].properties.regions' });
    expect((await issues({ device: 'isa-serial', bus: 'isa' }))[0]).toMatchObject({ path: 'devices[0].properties.regions' });
    expect((await issues({ slot: 1 }))).toEqual([]); // a function the machine has built in
    expect((await issues({ args: 'x=1' }))[0]).toMatchObject({ path: 'devices[0].properties.device', message: expect.stringMatching(/built in/) });
    expect(await issues({ device: 'isa-serial', irq: 4, regions: [{ name: 'regs', space: 'pio', base: '0x3f8', size: 8 }] })).toEqual([]);
    expect((await issues({ device: 'isa-serial', regions: [{ name: 'regs', space: 'pio', base: '3f8h', size: 8 }] }))[0].path).toMatch(/^devices\[0\]\.properties\.regions\[?\.?0\]?\.base$/);
    expect((await issues({ device: 'isa-serial', bus: 'isa', slot: 5, regions: [{ name: 'regs', space: 'pio', base: 0x3f8, size: 8 }] }))[0]).toMatchObject({ path: 'devices[0].properties.slot' });
  });

  it.skipIf(why !== null)(titled('at start: a BAR the device lacks, an ISA device without regions', why), async () => {
    const reg = new DeviceRegistry();
    const edges = { irq: { set() {} }, dma: { read: async () => null, write: async () => false }, clock: () => 0 };
    const make = (properties: Record<string, unknown>) => reg.create({ id: 'ser0', kind: 'qemu', edges, backend: { type: 'qemu' }, properties, config: { id: 'ser0', kind: 'qemu' }, logger: silentLogger });
    await expect(make({ device: 'pci-serial', regions: [{ name: 'regs', bar: 2 }] })).rejects.toThrow(/properties\.regions names BAR2 but the device implements BAR0/);
    await expect(make({ device: 'isa-serial' })).rejects.toThrow(/isa-serial/);
  });
});

describe.skipIf(why !== null)(titled('generic qemu kind: reset is QEMU\'s power-on reset, and the BARs stay placed', why), () => {
  const UART_LCR = 3;
  const UART_LSR = 5;
  const UART_SCR = 7;
  for (const running of [true, false]) {
    it(`pci-serial, ${running ? 'running (halting BIOS)' : 'stopped (-S)'}: registers written before read their power-on values after`, async () => {
      const reg = new DeviceRegistry();
      const edges = { irq: { set() {} }, dma: { read: async () => null, write: async () => false }, clock: () => 0 };
      const dev = await reg.create({ id: 'ser0', kind: 'qemu', edges, backend: { type: 'qemu' }, properties: { device: 'pci-serial', running }, config: { id: 'ser0', kind: 'qemu' }, logger: silentLogger });
      try {
        await dev.write(0, UART_SCR, 1, 0x5a);
        await dev.write(0, UART_LCR, 1, 0x1b);
        expect([await dev.read(0, UART_SCR, 1), await dev.read(0, UART_LCR, 1)]).toEqual([0x5a, 0x1b]);
        await dev.reset();
        expect([await dev.read(0, UART_SCR, 1), await dev.read(0, UART_LCR, 1)]).toEqual([0, 0]);
        expect(await dev.read(0, UART_LSR, 1)).toBe(0x60); // THRE | TEMT: the BAR decodes again
        expect(dev.metrics()).toMatchObject({ resets: 1, badAccess: 0 });
      } finally {
        await dev.close?.();
      }
    });
  }
});

describe.skipIf(why !== null)(titled('generic qemu kind: 64-bit memory BARs', why), () => {
  it('nvme: BAR0 (64-bit) is sized, placed below 4 GiB with its high half 0, and its registers reach QEMU\'s model', async () => {
    const reg = new DeviceRegistry();
    const edges = { irq: { set() {} }, dma: { read: async () => null, write: async () => false }, clock: () => 0 };
    const dev = (await reg.create({ id: 'nvme0', kind: 'qemu', edges, backend: { type: 'qemu' }, properties: { device: 'nvme', args: 'serial=mv0' }, config: { id: 'nvme0', kind: 'qemu' }, logger: silentLogger })) as QemuGenericDevice;
    try {
      const d = dev.describe();
      expect(d.pci).toMatchObject({ vendor: 0x1b36, device: 0x0010, classCode: 0x010802 }); // NVM Express
      expect(d.regions).toEqual([{ name: 'bar0', space: 'mmio', size: 0x4000, bar: 0 }]); // BAR1 is BAR0's high half: not a region
      expect(await dev.client.pciConfigRead(4, 0, 0x10, 4)).toBe(0xe000_0004); // mmioBase, type 64-bit
      expect(await dev.client.pciConfigRead(4, 0, 0x14, 4)).toBe(0);
      expect(await dev.read(0, 0x08, 4)).toBe(0x0001_0400); // NVME_REG_VS: 1.4, as QEMU 7.2 reports
    } finally {
      await dev.close();
    }
  });
});
