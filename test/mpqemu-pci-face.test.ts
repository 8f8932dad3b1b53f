// The face a guest QEMU is given for a shared device (src/trap/mpqemu/pci-face.ts): the NE2000
// as the RTL8029 function it describes (10ec:8029, Ethernet, one 32-byte I/O BAR, INTA), its
// BAR accesses reaching that guest's virtual card through the supervisor and the NIC router;
// the ATA disk keeps its native-mode IDE face; a device without BARs is refused by name.

import { describe, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/log.ts';
import { muxRouterFactory } from '../src/mux/router-factory.ts';
import * as R from '../src/pci/regs.ts';
import { Supervisor } from '../src/supervisor.ts';
import { launchGuests } from '../src/launch/guests.ts';
import { ProxiedFunction } from '../src/trap/mpqemu/function.ts';
import { MuxPortDevice } from '../src/trap/mpqemu/mux-port.ts';
import { ownPciFace, pciFaceFor } from '../src/trap/mpqemu/pci-face.ts';
import { NE_CMD, NE_DATAPORT } from '../src/devices/ne2k/regs.ts';

const MAC = [0x52, 0x54, 0x00, 0x4e, 0x00, 0x21];

describe('the proxied PCI face of a shared device', () => {
  it('ne2k: config space 10ec:8029 class 020000 INTA, a 32-byte I/O BAR whose accesses reach the guest\'s own virtual card (its granted MAC in the PROM)', async ({ expect }) => {
    const config = parseConfig({
      devices: [{ id: 'nic0', kind: 'ne2k' }],
      guests: [{ name: 'g1', grants: [{ device: 'nic0', mac: MAC.map((b) => b.toString(16).padStart(2, '0')).join(':') }] }],
    });
    const sup = new Supervisor({ config, logger: silentLogger, createRouter: await muxRouterFactory(config) });
    await sup.start();
    try {
      const dev = sup.device('nic0')!;
      const face = pciFaceFor(dev.description);
      expect(face.routes).toEqual([{ target: 'regs', shift: 0 }]);
      const port = new MuxPortDevice(face, dev.ranges, sup.attachLocalGuest('g1'));
      const fn = new ProxiedFunction(port);
      expect(fn.read(R.PCI_VENDOR_ID, 4)).toBe(0x8029_10ec);
      expect(fn.read(R.PCI_CLASS_PROG, 1) | (fn.read(R.PCI_CLASS_PROG + 1, 2) << 8)).toBe(0x02_0000);
      expect(fn.read(R.PCI_INTERRUPT_PIN, 1)).toBe(1);
      // Sizing BAR0 as QEMU's proxy does: an I/O BAR of 32 bytes.
      fn.write(R.PCI_BASE_ADDRESS_0, 4, 0xffff_ffff);
      expect(fn.read(R.PCI_BASE_ADDRESS_0, 4) >>> 0).toBe(0xffff_ffe1);
      fn.write(R.PCI_BASE_ADDRESS_0, 4, 0xc000);
      fn.write(R.PCI_COMMAND, 2, R.PCI_COMMAND_IO);
      const route = fn.route(0xc000n + BigInt(NE_DATAPORT), 4, false)!;
      expect(route).toMatchObject({ offset: NE_DATAPORT, bar: { index: 0, io: true, base: 0xc000, size: 32 } });
      expect(fn.route(0xc020n, 1, false)).toBeNull();
      // Read the PROM by remote DMA through the port, as ne2k-pci's probe does (word mode: each byte doubled).
      const w = (off: number, v: number): Promise<void> => port.write(0, off, 1, v) as Promise<void>;
      await w(NE_CMD, 0x21); // page 0, stop, no DMA
      await w(0x0e, 0x49); // DCR: word-wide, FIFO threshold 8
      await w(0x0a, 12); // RBCR0
      await w(0x0b, 0);
      await w(0x08, 0); // RSAR0
      await w(0x09, 0);
      await w(NE_CMD, 0x0a); // remote read, start
      const prom: number[] = [];
      for (let i = 0; i < 6; i++) prom.push((await port.read(0, NE_DATAPORT, 2)) & 0xff);
      expect(prom).toEqual(MAC);
    } finally {
      await sup.close();
    }
  });

  it('ata keeps its native-mode IDE face; a device with a region outside any BAR is refused by name', ({ expect }) => {
    const ata = pciFaceFor({
      kind: 'ata',
      regions: [
        { name: 'cmd', space: 'pio', size: 8, legacyBase: 0x1f0 },
        { name: 'ctl', space: 'pio', size: 2, legacyBase: 0x3f6 },
        { name: 'bmide', space: 'pio', size: 16, bar: 4 },
      ],
      pci: { vendor: 0x8086, device: 0x7010, revision: 0, classCode: 0x010180, interruptPin: 0 },
      properties: [],
    });
    expect(ata.description.pci!.classCode).toBe(0x010185);
    expect(() => ownPciFace({ kind: 'uart', regions: [{ name: 'regs', space: 'pio', size: 8, legacyBase: 0x3f8 }], pci: { vendor: 1, device: 2, revision: 0, classCode: 0x070002, interruptPin: 1 }, properties: [] })).toThrow(
      'pci face: device uart: region regs has no BAR; a proxied function reaches the guest through its BARs only',
    );
    expect(() => ownPciFace({ kind: 'isa-thing', regions: [], properties: [] })).toThrow('pci face: device isa-thing has no PCI identity to present over the proxy');
  });

  it('run {type: qemu} names what it cannot present: no disk or NIC grant, or a device of another kind', async ({ expect }) => {
    const config = parseConfig({
      devices: [{ id: 's0', kind: 'scratch' }],
      guests: [
        { name: 'a', run: { type: 'qemu' }, grants: [{ device: 's0', shared: true }] },
        { name: 'b', run: { type: 'qemu', device: 's0' }, grants: [{ device: 's0', shared: true }] },
      ],
    });
    const sup = new Supervisor({ config, logger: silentLogger, createRouter: await muxRouterFactory(config) });
    await sup.start();
    try {
      const outcomes = await Promise.all((await launchGuests(sup, config, '/nonexistent.sock', silentLogger)).map((l) => l.done));
      expect(outcomes.map((o) => [o.guest, o.ok, o.detail])).toEqual([
        ['a', false, 'guests[0].run.device: name the device to present (the guest has 0 grants of kinds ata/ne2k/qemu-ne2k)'],
        ['b', false, 'guests[1].run.device: "s0" is of kind scratch; a guest QEMU can be given a device of kind ata, ne2k, qemu-ne2k'],
      ]);
    } finally {
      await sup.close();
    }
  });
});
