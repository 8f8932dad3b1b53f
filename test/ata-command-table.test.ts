// The one ATA command table (src/devices/ata/command-table.ts) against everything that uses it:
// every opcode 00h-FFh is issued to our real ATA model and to QEMU's real IDE disk (qtest),
// and the protocol each device runs (or its abort) must be the table's; the MUX classifier's
// event for an opcode must match what the devices do; the partition window's EXT forms and
// pass-through list, and the access log's names, must be the table's.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandClass } from '../machines/ata/classify.ts';
import { WINDOW_ALLOWED } from '../machines/ata/window.ts';
import { MemoryBackend } from '../src/backends/memory.ts';
import { AtaDevice } from '../src/devices/ata/index.ts';
import { ATA_COMMANDS, ataCommand, type AtaProtocol } from '../src/devices/ata/command-table.ts';
import { RW_COMMANDS } from '../src/devices/ata/commands.ts';
import { QemuIdeDevice } from '../src/devices/qemu-ide.ts';
import { ataCommandName } from '../src/log/names.ts';
import { probeCommand, type Observed, type ProbeRig } from './helpers/ata-probe.ts';
import { BufferMemory, IrqRecorder, makeEdges, makeImage, patternSector, qemuMissingReason } from './helpers/qemu.ts';
import { titled } from './helpers/requires.ts';

const OPCODES = Array.from({ length: 256 }, (_, op) => op);
const MEM_BASE = 0x10_0000;
const hex = (op: number): string => `0x${op.toString(16).padStart(2, '0')}`;

/** What a device running the command shows the probe (ATA's diagnostic protocol moves no data). */
function expectedObservation(protocol: AtaProtocol): Observed {
  return protocol === 'diagnostic' ? 'non-data' : (protocol as Observed);
}

/** The chart event a device's observed protocol calls for. */
function eventOf(o: Observed): string {
  return o === 'pio-in' ? 'CMD_PIO_IN' : o === 'pio-out' ? 'CMD_PIO_OUT' : o === 'dma-in' || o === 'dma-out' ? 'CMD_DMA' : 'CMD_NODATA';
}

/** Every opcode's observation on one device, in order (each probe resets the device first). */
async function observeAll(rig: ProbeRig): Promise<Map<number, Observed>> {
  const seen = new Map<number, Observed>();
  for (const op of OPCODES) seen.set(op, await probeCommand(rig, op));
  return seen;
}

/** Opcodes where the device disagrees with the table's claim (`flag`): "0x06 DATA SET MANAGEMENT: table dma-out, device aborted". */
function disagreements(seen: Map<number, Observed>, flag: 'model' | 'qemu'): string[] {
  return OPCODES.flatMap((op) => {
    const c = ataCommand(op);
    const want: Observed = c?.[flag] ? expectedObservation(c.protocol) : 'aborted';
    const got = seen.get(op);
    return got === want ? [] : [`${hex(op)} ${c?.name ?? '(unlisted)'}: table ${want}, device ${got}`];
  });
}

/** Opcodes a device runs whose classifier event is not the one its protocol calls for. */
function classifierDisagreements(seen: Map<number, Observed>): string[] {
  return OPCODES.flatMap((op) => {
    const got = seen.get(op)!;
    if (got === 'aborted') return []; // an aborted command ends on its status read in every chart state
    return eventOf(got) === commandClass(op) ? [] : [`${hex(op)} ${ataCommandName(op) ?? ''}: device ${got}, classifier ${commandClass(op)}`];
  });
}

describe('the ATA command table itself', () => {
  it('lists each sector command with an EXT form of the same transfer', () => {
    for (const c of ATA_COMMANDS.values()) {
      if (c.sectors?.ext === undefined) continue;
      const ext = ataCommand(c.sectors.ext);
      expect(ext, `${c.name}'s EXT form ${hex(c.sectors.ext)}`).toBeDefined();
      expect([ext!.lba48, ext!.protocol, ext!.sectors?.multiple], `${c.name} -> ${ext!.name}`).toEqual([true, c.protocol, c.sectors.multiple]);
      if (c.lba48) expect(c.sectors.ext).toBe(c.opcode);
    }
    expect(ataCommand(0xff), 'the window replaces refused commands by FFh: it must stay undefined').toBeUndefined();
  });

  it('the model runs exactly the sector commands the table gives it', () => {
    const want = [...ATA_COMMANDS.values()].filter((c) => c.model && c.sectors).map((c) => c.opcode);
    expect([...RW_COMMANDS.keys()].sort((a, b) => a - b)).toEqual(want.sort((a, b) => a - b));
    for (const [op, rw] of RW_COMMANDS) expect(rw.ext, rw.name).toBe(ataCommand(op)!.lba48);
  });

  it('a windowed guest may send only commands that move no sectors and write nothing', () => {
    for (const op of WINDOW_ALLOWED) {
      const c = ataCommand(op);
      expect(c, `${hex(op)} in WINDOW_ALLOWED`).toBeDefined();
      expect(c!.sectors, c!.name).toBeUndefined();
      expect(['non-data', 'diagnostic', 'pio-in', 'device-reset'], c!.name).toContain(c!.protocol);
    }
  });

  it('the access log names every listed command by the table', () => {
    for (const op of OPCODES) expect(ataCommandName(op)).toBe(ataCommand(op)?.name);
  });
});

describe('our ATA model runs the table', () => {
  let seen: Map<number, Observed>;
  beforeAll(async () => {
    const mem = new BufferMemory(MEM_BASE, 0x1_0000);
    const irq = new IrqRecorder();
    const dev = new AtaDevice(makeEdges(mem, irq), new MemoryBackend(2048));
    seen = await observeAll({ dev, mem, irq, prdAt: MEM_BASE, bufAt: MEM_BASE + 0x1000 });
  });

  it('each opcode with the table protocol where the table says the model runs it, else aborted', () => {
    expect(disagreements(seen, 'model')).toEqual([]);
    // The protocols that matter most, seen for real (not only through the table).
    expect([0x06, 0xc8, 0xca, 0x25, 0x35, 0x20, 0x30, 0xec, 0xe7].map((op) => seen.get(op))).toEqual([
      'dma-out', 'dma-in', 'dma-out', 'dma-in', 'dma-out', 'pio-in', 'pio-out', 'pio-in', 'non-data',
    ]);
  });

  it('the MUX classifier sends the event of the protocol the model runs, for every opcode', () => {
    expect(classifierDisagreements(seen)).toEqual([]);
  });
});

const qemuMissing = qemuMissingReason();

describe.skipIf(qemuMissing !== null)(titled("QEMU's IDE disk runs the table", qemuMissing), () => {
  let seen: Map<number, Observed>;
  let dev: QemuIdeDevice | undefined;
  let image: { path: string; dispose: () => void } | undefined;
  beforeAll(async () => {
    image = makeImage(2048, (lba) => patternSector(lba));
    const mem = new BufferMemory(MEM_BASE, 0x1_0000);
    const irq = new IrqRecorder();
    dev = await QemuIdeDevice.open(makeEdges(mem, irq), { image: image.path });
    seen = await observeAll({ dev, mem, irq, prdAt: MEM_BASE, bufAt: MEM_BASE + 0x1000 });
  }, 50_000);
  afterAll(async () => {
    await dev?.close();
    image?.dispose();
  });

  it('each opcode with the table protocol where the table says QEMU runs it, else aborted', () => {
    expect(disagreements(seen, 'qemu')).toEqual([]);
  });

  it('the MUX classifier sends the event of the protocol QEMU runs, for every opcode', () => {
    expect(classifierDisagreements(seen)).toEqual([]);
  });
});
