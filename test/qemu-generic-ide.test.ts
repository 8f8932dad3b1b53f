// The generic `qemu` kind on a function QEMU's `pc` machine has built in: the PIIX3 IDE at
// 00:01.1 (no -device; the drive comes from backend.extraArgs), with its legacy ports as fixed
// regions and its bus-master BAR4, shared through machines/ata. What qemu-ide does for this one
// device, from configuration alone: two guests read the identity from their config space,
// IDENTIFY the drive and read sectors by PIO, each getting the image's bytes.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Access } from '../src/access.ts';
import { parseConfig } from '../src/config/load.ts';
import { muxRouterFactory } from '../src/mux/router-factory.ts';
import type { MuxEngine } from '../src/mux/engine.ts';
import { pcicfgAddress } from '../src/pci/view.ts';
import { Supervisor, type LocalGuest } from '../src/supervisor.ts';
import { ataString, makeImage, patternSector, SECTOR, word } from './helpers/qemu.ts';
import { missing, titled } from './helpers/requires.ts';

const why = missing('qemu');
const SECTORS = 2048;
const CMD = 0x1f0;
const CTL = 0x3f6;
// ATA registers and bits (Linux ata.h).
const ATA_REG_NSECT = 2;
const ATA_REG_LBAL = 3;
const ATA_REG_LBAM = 4;
const ATA_REG_LBAH = 5;
const ATA_REG_DEVICE = 6;
const ATA_REG_CMD = 7; // write: command; read: status
const ATA_BUSY = 0x80;
const ATA_DRQ = 0x08;
const ATA_ERR = 0x01;
const ATA_LBA = 0x40;
const ATA_CMD_ID_ATA = 0xec;
const ATA_CMD_PIO_READ = 0x20;

describe.skipIf(why !== null)(titled('generic qemu kind on QEMU\'s built-in PIIX3 IDE (00:01.1) through machines/ata', why), () => {
  let image: { path: string; dispose: () => void };
  let sup: Supervisor;
  let engine: MuxEngine | null = null;
  let slot = 0;
  let a: LocalGuest;

  beforeAll(async () => {
    image = makeImage(SECTORS, (lba) => patternSector(lba));
    const config = parseConfig({
      socket: `${image.path}.sock`,
      devices: [
        {
          id: 'ide',
          kind: 'qemu',
          backend: { type: 'qemu', extraArgs: ['-drive', `file=${image.path},if=ide,format=raw`] },
          properties: {
            slot: 1,
            function: 1,
            irq: 14,
            regions: [
              { name: 'cmd', space: 'pio', base: '0x1f0', size: 8 },
              { name: 'ctl', space: 'pio', base: '0x3f6', size: 1 },
              { name: 'bmide', bar: 4 },
            ],
          },
          mux: { machine: 'ata' },
        },
      ],
      guests: ['a', 'b'].map((name) => ({ name, grants: [{ device: 'ide', shared: true }] })),
    });
    sup = new Supervisor({ config, createRouter: await muxRouterFactory(config, { onEngine: (_id, e) => (engine = e) }) });
    await sup.start();
    slot = Number.parseInt(/^00:([0-9a-f]{2})\.0$/.exec(sup.layout().find((d) => d.id === 'ide')!.pci!)![1], 16);
  });
  afterAll(async () => {
    await sup?.close();
    image?.dispose();
  });

  const port = (g: LocalGuest) => {
    const acc = async (a: Access) => {
      const r = await g.access(a);
      if (r.error) throw new Error(`guest ${g.name}: ${a.space} ${a.dir} 0x${a.addr.toString(16)}: ${r.error}`);
      return r;
    };
    return {
      out: (addr: number, value: number) => acc({ space: 'pio', addr, size: 1, dir: 'write', value }),
      in: async (addr: number) => Number((await acc({ space: 'pio', addr, size: 1, dir: 'read' })).value),
      insw: async (addr: number, count: number) => (await acc({ space: 'pio', addr, size: 2, dir: 'read', count })).data!,
      cfg: async (reg: number) => Number((await acc({ space: 'pcicfg', addr: pcicfgAddress(0, slot, 0, reg), size: 4, dir: 'read' })).value),
    };
  };

  /** One PIO command that returns one 512-byte block: wait for DRQ, read it, check status. */
  async function pioBlock(g: LocalGuest, command: number, lba = 0): Promise<Uint8Array> {
    const p = port(g);
    await p.out(CTL, 0x02); // nIEN: poll, no interrupt
    await p.out(CMD + ATA_REG_DEVICE, ATA_LBA);
    await p.out(CMD + ATA_REG_NSECT, 1);
    await p.out(CMD + ATA_REG_LBAL, lba & 0xff);
    await p.out(CMD + ATA_REG_LBAM, (lba >> 8) & 0xff);
    await p.out(CMD + ATA_REG_LBAH, (lba >> 16) & 0xff);
    await p.out(CMD + ATA_REG_CMD, command);
    let status = 0;
    for (let i = 0; i < 1000 && ((status = await p.in(CMD + ATA_REG_CMD)) & ATA_BUSY || !(status & (ATA_DRQ | ATA_ERR))); i++);
    expect(status & (ATA_BUSY | ATA_ERR | ATA_DRQ)).toBe(ATA_DRQ);
    const data = await p.insw(CMD, SECTOR / 2);
    expect((await p.in(CMD + ATA_REG_CMD)) & (ATA_BUSY | ATA_DRQ | ATA_ERR)).toBe(0);
    return data;
  }

  it('the guest sees the PIIX3 IDE function with its bus-master BAR4, read from QEMU', async () => {
    a = sup.attachLocalGuest('a');
    const p = port(a);
    expect(await p.cfg(0x00)).toBe(0x7010_8086);
    expect((await p.cfg(0x08)) >>> 8).toBe(0x010180); // IDE, legacy mode, bus master
    const bmide = sup.layout().find((d) => d.id === 'ide')!.regions.find((r) => r.name === 'bmide')!;
    expect(bmide.end - bmide.start + 1).toBe(16);
    expect(await p.cfg(0x20)).toBe(bmide.start | 1);
    expect(sup.layout().find((d) => d.id === 'ide')!.regions.filter((r) => r.name !== 'bmide')).toEqual([
      { name: 'cmd', space: 'pio', start: CMD, end: CMD + 7 },
      { name: 'ctl', space: 'pio', start: CTL, end: CTL },
    ]);
  });

  it('two guests IDENTIFY QEMU\'s drive and read its sectors by PIO at once, each getting the image\'s bytes', async () => {
    const b = sup.attachLocalGuest('b');
    const run = async (g: LocalGuest, lbas: number[]) => {
      const id = await pioBlock(g, ATA_CMD_ID_ATA);
      expect(ataString(id, 27, 20)).toBe('QEMU HARDDISK');
      expect(word(id, 60) | (word(id, 61) << 16)).toBe(SECTORS);
      for (const lba of lbas) expect(Buffer.from(await pioBlock(g, ATA_CMD_PIO_READ, lba)).equals(Buffer.from(patternSector(lba)))).toBe(true);
    };
    await Promise.all([run(a, [0, 1, 2, 3, 1000, 2047]), run(b, [7, 6, 5, 4, 1500, 2046])]);
    expect(engine!.stats().unsafeSwitches).toBe(0);
    expect(engine!.stats().switches).toBeGreaterThanOrEqual(2);
  });
});
