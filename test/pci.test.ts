import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.ts';
import { Supervisor } from '../src/supervisor.ts';
import { PeerClient } from '../src/channel/peer-client.ts';
import type { Access, Reply } from '../src/access.ts';
import { pcicfgAddress } from '../src/pci/view.ts';
import { SCRATCH_MAGIC, SCR_ID } from '../src/devices/scratch.ts';
import * as R from '../src/pci/regs.ts';
import { missing, missingFile, titled } from './helpers/requires.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

type Port = { access(acc: Access): Promise<Reply> };

const cf8 = (bus: number, slot: number, fn: number, reg: number) => (0x8000_0000 | (bus << 16) | (slot << 11) | (fn << 8) | (reg & 0xfc)) >>> 0;

async function cfgRead(g: Port, slot: number, fn: number, reg: number, size: 1 | 2 | 4 = 4): Promise<number> {
  await g.access({ space: 'pio', addr: R.PCI_CONF1_ADDRESS_PORT, size: 4, dir: 'write', value: cf8(0, slot, fn, reg) });
  return Number((await g.access({ space: 'pio', addr: R.PCI_CONF1_DATA_PORT + (reg & 3), size, dir: 'read' })).value);
}

async function cfgWrite(g: Port, slot: number, fn: number, reg: number, value: number, size: 1 | 2 | 4 = 4): Promise<void> {
  await g.access({ space: 'pio', addr: R.PCI_CONF1_ADDRESS_PORT, size: 4, dir: 'write', value: cf8(0, slot, fn, reg) });
  await g.access({ space: 'pio', addr: R.PCI_CONF1_DATA_PORT + (reg & 3), size, dir: 'write', value });
}

/** Scan bus 0 the way Linux does: vendor id per function, more functions only if multi-function. */
async function scan(g: Port): Promise<string[]> {
  const found: string[] = [];
  for (let slot = 0; slot < 32; slot++) {
    for (let fn = 0; fn < 8; fn++) {
      const id = await cfgRead(g, slot, fn, R.PCI_VENDOR_ID);
      if (id === 0xffff_ffff) {
        if (fn === 0) break;
        continue;
      }
      found.push(`${slot}.${fn} ${(id & 0xffff).toString(16)}:${(id >>> 16).toString(16)}`);
      if (fn === 0 && ((await cfgRead(g, slot, 0, R.PCI_HEADER_TYPE, 1)) & R.PCI_HEADER_TYPE_MFD) === 0) break;
    }
  }
  return found;
}

async function setup(hostBridge = true) {
  const dir = mkdtempSync(join(tmpdir(), 'mvpci-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const config = parseConfig({
    socket: join(dir, 'mv.sock'),
    pci: { hostBridge },
    devices: [
      { id: 's1', kind: 'scratch', properties: { irq: 10 } },
      { id: 's2', kind: 'scratch', properties: { irq: 11 }, pci: { slot: 5 } },
      { id: 's3', kind: 'scratch', properties: { irq: 11 }, pci: { slot: 5, function: 2 }, map: { regs: '0xd000' } },
    ],
    guests: [
      { name: 'one', grants: [{ device: 's1' }] },
      { name: 'two', grants: [{ device: 's2' }, { device: 's3' }] },
    ],
  });
  const sup = new Supervisor({ config });
  cleanups.push(() => sup.close());
  await sup.listen();
  return { sup, sock: config.socket };
}

describe('PCI configuration space per guest', () => {
  it('two guests scanning over CF8/CFC each see the host bridge and only their own functions', async () => {
    const { sup, sock } = await setup();
    const one = await PeerClient.connect(sock, { guest: 'one' });
    const two = sup.attachLocalGuest('two');
    cleanups.push(() => one.bye());
    // s1 takes the first free slot (1); s2 and s3 share slot 5 (function 0 is multi-function).
    expect(await scan(one)).toEqual(['0.0 8086:1237', '1.0 1b36:5']);
    expect(await scan(two)).toEqual(['0.0 8086:1237', '5.0 1b36:5', '5.2 1b36:5']);
    expect(await cfgRead(one, 5, 0, 0)).toBe(0xffff_ffff);
    expect(await cfgRead(two, 1, 0, 0)).toBe(0xffff_ffff);
    // Host bridge class: 0x060000.
    expect((await cfgRead(one, 0, 0, R.PCI_REVISION_ID)) >>> 8).toBe(0x060000);
  });

  it('presents ids, class, BARs at the mapped base, IRQ line and pin; BAR sizing works', async () => {
    const { sup } = await setup();
    const g = sup.attachLocalGuest('two');
    const layout = sup.layout();
    const s3 = layout.find((d) => d.id === 's3')!;
    expect(s3.regions[0]).toMatchObject({ name: 'regs', space: 'pio', start: 0xd000 });
    expect(await cfgRead(g, 5, 2, R.PCI_SUBSYSTEM_VENDOR_ID)).toBe((0x1100 << 16) | 0x1af4);
    expect((await cfgRead(g, 5, 2, R.PCI_REVISION_ID)) >>> 8).toBe(0x00ff00);
    const bar0 = await cfgRead(g, 5, 2, R.PCI_BASE_ADDRESS_0);
    expect(bar0).toBe(0xd000 | 1);
    const bar1 = await cfgRead(g, 5, 2, R.PCI_BASE_ADDRESS_0 + 4);
    expect(bar1).toBe(s3.regions[1].start);
    expect(bar1 & 0xfff).toBe(0);
    expect(await cfgRead(g, 5, 2, R.PCI_INTERRUPT_LINE, 1)).toBe(11);
    expect(await cfgRead(g, 5, 2, R.PCI_INTERRUPT_PIN, 1)).toBe(1);
    // Sizing: write all-ones, read the mask (0x28 bytes of ports -> 64; 4 KiB of memory), restore.
    await cfgWrite(g, 5, 2, R.PCI_BASE_ADDRESS_0, 0xffff_ffff);
    expect(await cfgRead(g, 5, 2, R.PCI_BASE_ADDRESS_0)).toBe(0xffff_ffc1);
    await cfgWrite(g, 5, 2, R.PCI_BASE_ADDRESS_0, bar0);
    await cfgWrite(g, 5, 2, R.PCI_BASE_ADDRESS_0 + 4, 0xffff_ffff);
    expect(await cfgRead(g, 5, 2, R.PCI_BASE_ADDRESS_0 + 4)).toBe(0xffff_f000);
    await cfgWrite(g, 5, 2, R.PCI_BASE_ADDRESS_0 + 4, bar1);
    expect(await cfgRead(g, 5, 2, R.PCI_BASE_ADDRESS_0 + 4)).toBe(bar1);
    // Unused BARs and the ROM read 0 and size to 0: not implemented.
    await cfgWrite(g, 5, 2, R.PCI_BASE_ADDRESS_0 + 8, 0xffff_ffff);
    expect(await cfgRead(g, 5, 2, R.PCI_BASE_ADDRESS_0 + 8)).toBe(0);
    // The BAR's address reaches the device.
    expect(await g.access({ space: 'pio', addr: (bar0 & ~3) + SCR_ID, size: 4, dir: 'read' })).toEqual({ value: SCRATCH_MAGIC });
    // Word and byte reads at offsets within CONFIG_DATA.
    expect(await cfgRead(g, 5, 2, R.PCI_DEVICE_ID, 2)).toBe(0x0005);
    expect(await cfgRead(g, 5, 2, R.PCI_VENDOR_ID + 1, 1)).toBe(0x1b);
  });

  it('keeps command register writes per guest, and reaches the same view through pcicfg', async () => {
    const { sup } = await setup();
    const two = sup.attachLocalGuest('two');
    const cmd0 = await cfgRead(two, 5, 0, R.PCI_COMMAND, 2);
    expect(cmd0).toBe(R.PCI_COMMAND_IO | R.PCI_COMMAND_MEMORY);
    await cfgWrite(two, 5, 0, R.PCI_COMMAND, cmd0 | R.PCI_COMMAND_MASTER | 0x8000, 2);
    // Bit 15 is not writable.
    expect(await cfgRead(two, 5, 0, R.PCI_COMMAND, 2)).toBe(cmd0 | R.PCI_COMMAND_MASTER);
    const viaCfg = await two.access({ space: 'pcicfg', addr: pcicfgAddress(0, 5, 0, R.PCI_COMMAND), size: 2, dir: 'read' });
    expect(viaCfg.value).toBe(cmd0 | R.PCI_COMMAND_MASTER);
    await two.access({ space: 'pcicfg', addr: pcicfgAddress(0, 5, 0, R.PCI_LATENCY_TIMER), size: 1, dir: 'write', value: 0x40 });
    expect(await cfgRead(two, 5, 0, R.PCI_LATENCY_TIMER, 1)).toBe(0x40);
    expect((await two.access({ space: 'pcicfg', addr: pcicfgAddress(0, 1, 0, 0), size: 4, dir: 'read' })).value).toBe(0xffff_ffff);
    expect((await two.access({ space: 'pcicfg', addr: pcicfgAddress(1, 5, 0, 0), size: 4, dir: 'read' })).value).toBe(0xffff_ffff);
    // Another guest granted the same device would keep its own copy: reattach "two" fresh.
    two.detach();
    const again = sup.attachLocalGuest('two');
    expect(await cfgRead(again, 5, 0, R.PCI_COMMAND, 2)).toBe(cmd0);
  });

  it('passes the Linux/pciutils conf1 probe and ignores the enable bit when clear', async () => {
    const { sup } = await setup();
    const g = sup.attachLocalGuest('one');
    // pci_check_type1: outb(0x01, 0xCFB); tmp = inl(0xCF8); outl(0x80000000, 0xCF8); inl(0xCF8) == 0x80000000.
    await g.access({ space: 'pio', addr: 0xcfb, size: 1, dir: 'write', value: 1 });
    await g.access({ space: 'pio', addr: 0xcf8, size: 4, dir: 'write', value: 0x8000_0000 });
    expect((await g.access({ space: 'pio', addr: 0xcf8, size: 4, dir: 'read' })).value).toBe(0x8000_0000);
    expect((await g.access({ space: 'pio', addr: 0xcfb, size: 1, dir: 'read' })).value).toBe(0x80);
    // Enable bit clear: data reads all-ones.
    await g.access({ space: 'pio', addr: 0xcf8, size: 4, dir: 'write', value: 0 });
    expect((await g.access({ space: 'pio', addr: 0xcfc, size: 4, dir: 'read' })).value).toBe(0xffff_ffff);
    // No grant is needed for the mechanism itself, and nothing was denied.
    expect(sup.stats().guests.find((x) => x.guest === 'one')!.denials).toBe(0);
  });

  it('by default a guest sees only its granted functions: no host bridge either', async () => {
    const { sup } = await setup(false);
    const one = sup.attachLocalGuest('one');
    const two = sup.attachLocalGuest('two');
    expect(await scan(one)).toEqual(['1.0 1b36:5']);
    expect(await scan(two)).toEqual(['5.0 1b36:5', '5.2 1b36:5']);
  });
});

const TRAP_LIB = fileURLToPath(new URL('../native/trap/build/libmuxtrap.so', import.meta.url));
const lspciMissing = missing('lspci') ?? missingFile(TRAP_LIB);

describe('PCI view seen by an unmodified lspci', () => {
  it.skipIf(lspciMissing !== null)(titled('lspci -A intel-conf1 under the trap shim lists each guest its own functions', lspciMissing), async () => {
    const { sock } = await setup();
    const lspci = (guest: string) =>
      new Promise<string>((resolve, reject) =>
        execFile(
          'lspci',
          ['-A', 'intel-conf1', '-n'],
          { env: { ...process.env, LD_PRELOAD: TRAP_LIB, MUXVISOR_SOCKET: sock, MUXVISOR_GUEST: guest, MUXVISOR_DMA_SIZE: '0' }, timeout: 30_000 },
          (err, stdout, stderr) => (err ? reject(new Error(`lspci as ${guest}: ${err.message}: ${stderr}`)) : resolve(stdout)),
        ),
      );
    const [one, two] = await Promise.all([lspci('one'), lspci('two')]);
    const rows = (out: string) => out.trim().split('\n').map((l) => l.split(' ').slice(0, 3).join(' '));
    expect(rows(one)).toEqual(['00:00.0 0600: 8086:1237', '00:01.0 00ff: 1b36:0005']);
    expect(rows(two)).toEqual(['00:00.0 0600: 8086:1237', '00:05.0 00ff: 1b36:0005', '00:05.2 00ff: 1b36:0005']);
  });
});

describe('PIIX3 IDE function of the ATA disk', () => {
  it('shows 8086:7010 with BAR4 and the IDETIM decode-enable bit Linux ata_piix checks, per guest', async () => {
    const config = parseConfig({
      devices: [{ id: 'disk', kind: 'ata', backend: { type: 'memory', sizeMiB: 1 }, pci: { slot: 1 } }],
      guests: [
        { name: 'a', grants: [{ device: 'disk', shared: true }] },
        { name: 'b', grants: [{ device: 'disk', shared: true }] },
      ],
    });
    const sup = new Supervisor({ config });
    cleanups.push(() => sup.close());
    await sup.start();
    const a = sup.attachLocalGuest('a');
    const b = sup.attachLocalGuest('b');
    expect(await cfgRead(a, 1, 0, 0)).toBe(0x7010_8086);
    expect((await cfgRead(a, 1, 0, 0x20)) & 1).toBe(1); // BAR4: I/O space (bus master)
    expect(await cfgRead(a, 1, 0, 0x41, 1)).toBe(0x80); // primary channel decode enabled
    expect(await cfgRead(a, 1, 0, 0x43, 1)).toBe(0x00); // secondary: no drive, not decoded
    await cfgWrite(a, 1, 0, 0x40, 0xa307, 2); // a driver programs its timings
    expect(await cfgRead(a, 1, 0, 0x40, 2)).toBe(0xa307);
    expect(await cfgRead(b, 1, 0, 0x40, 2)).toBe(0x8000); // another guest's view is its own
  });
});
