// Any QEMU device model as the physical device (kind `qemu`): QEMU runs with
// `-device NAME,ARGS` and qtest drives it. For a PCI device the function's identity is read
// from its config space, its BARs are sized and placed (I/O from ioBase, memory from
// mmioBase, in QEMU's address space only: the guest sees them where the supervisor maps
// them), and INTx is routed through the PIIX3 PIRQ registers to one ISA IRQ that the
// intercepted IOAPIC reports. An ISA device (isa-serial) is given its fixed regions and IRQ.
// Without a device name the function is one the machine has built in (the PIIX3 IDE at 01.1,
// whose legacy ports are fixed regions beside its BAR4, and whose IRQ 14 is the irq property).
// Guest accesses are forwarded as qtest port or memory accesses, one at a time. A reset is
// QMP's system_reset (qtest has none), after which the BARs, decoding and routing are set again.
//
// Not forwarded: bus-master DMA (the device's DMA reaches QEMU's RAM, not the guest's) and
// config-space writes (the guest's view is the supervisor's own copy; registers 0x40-0xFF
// are a read-only snapshot taken at start).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient } from '../backends/qmp.ts';
import { QtestClient, QtestError } from '../backends/qtest.ts';
import type { DevSize, Device, DeviceDescription, DeviceEdges, DeviceMetrics, PciIdentity, RegionInfo } from '../device.ts';
import * as R from '../pci/regs.ts';
import {
  busOf,
  DEFAULT_IO_BASE,
  DEFAULT_MMIO_BASE,
  DEFAULT_PCI_IRQ,
  DEFAULT_SLOT,
  QemuGenericBackendSchema,
  QemuGenericPropertiesSchema,
  type QemuGenericBackend,
  type QemuGenericProperties,
} from './qemu-generic-config.ts';
import { allOnes, enableCommand, programBar, readMemOf, routePirqs, SerialQueue, sizeBars, writeHaltBios, writeMemOf, type SizedBar } from './qemu-pci.ts';

/** One region as the device forwards it: where QEMU decodes it. */
interface Placed {
  info: RegionInfo;
  /** Address in QEMU's port or memory space. */
  qemuBase: number;
  /** A 64-bit memory BAR (its high half is set to 0). */
  is64?: boolean;
}

export interface QemuGenericOptions extends QemuGenericProperties {
  backend?: Omit<QemuGenericBackend, 'type'>;
}

export class QemuGenericDevice implements Device {
  private readonly counters = { badAccess: 0, resets: 0 };
  private readonly queue = new SerialQueue();
  private irqOut = false;
  private placed: Placed[] = [];
  private pci: PciIdentity | undefined;
  private readonly unsubscribe: () => void;
  private qmp: QmpClient | null = null;

  private constructor(
    readonly client: QtestClient,
    private readonly edges: DeviceEdges,
    private readonly opts: QemuGenericOptions,
    private readonly dir: string,
    /** The ISA IRQ the device raises (PCI: where its PIRQ is routed); null: none. */
    readonly irq: number | null,
    /** PCI slot on bus 0, or null for an ISA device. */
    readonly slot: number | null,
    /** PCI function number within the slot. */
    readonly fn: number,
  ) {
    const offIrq = client.onIrq((line, level) => {
      if (line !== this.irq || level === this.irqOut) return;
      this.irqOut = level;
      edges.irq.set(level);
    });
    // QEMU gone: reported at once on the log edge, not only at the next access.
    const offExit = client.onExit((err) => edges.log?.hostError('QEMU (the physical device over qtest)', err));
    this.unsubscribe = () => {
      offIrq();
      offExit();
    };
  }

  /** Start QEMU with the device, place its BARs (PCI) and return it. */
  static async open(edges: DeviceEdges, options: QemuGenericOptions): Promise<QemuGenericDevice> {
    const { backend = {}, ...rest } = options;
    const props = QemuGenericPropertiesSchema.parse(rest);
    const isa = busOf(props) === 'isa';
    const slot = isa ? null : (props.slot ?? DEFAULT_SLOT);
    const fn = props.function ?? 0;
    const irq = props.irq ?? (isa ? null : DEFAULT_PCI_IRQ);
    const dir = mkdtempSync(join(tmpdir(), 'muxvisor-qemu-'));
    try {
      const running = props.running ?? true;
      // Without a device name the function is one the machine has built in (the PIIX3 IDE at 01.1).
      const addr = slot === null ? [] : [`addr=${hex2(slot)}.${fn}`];
      const deviceArgs = props.device === undefined ? [] : ['-device', [props.device, ...addr, ...(props.args ? [props.args] : [])].join(',')];
      const qmpPath = join(dir, 'qmp.sock');
      const client = await QtestClient.start({
        binary: backend.binary,
        memoryMiB: backend.memoryMiB ?? 16,
        stopped: !running,
        interceptIrq: 'ioapic',
        extraArgs: [...(running ? ['-bios', writeHaltBios(dir)] : []), '-qmp', `unix:${qmpPath},server=on,wait=off`, ...(backend.extraArgs ?? []), ...deviceArgs],
      });
      const dev = new QemuGenericDevice(client, edges, { ...props, backend }, dir, irq, slot, fn);
      try {
        dev.qmp = await QmpClient.connect(qmpPath);
        await dev.init();
      } catch (err) {
        await dev.close();
        throw err;
      }
      return dev;
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private get who(): string {
    return this.opts.device !== undefined ? `qemu ${this.opts.device}` : `qemu 00:${hex2(this.slot ?? 0)}.${this.fn}`;
  }

  /** No firmware ran: read the identity, size and place the BARs, enable decoding, route INTx. */
  private async init(): Promise<void> {
    const regions = this.opts.regions ?? [];
    // Fixed regions (an ISA device's, a PCI function's legacy ports) are decoded where they are.
    const fixed = (r: (typeof regions)[number]): Placed | null => ('base' in r ? { info: { name: r.name, space: r.space, size: r.size, legacyBase: r.base }, qemuBase: r.base } : null);
    if (this.slot === null) {
      this.placed = regions.map(fixed).filter((p): p is Placed => p !== null); // busOf: an ISA device's regions are all fixed
      return;
    }
    const c = this.client;
    const s = this.slot;
    const f = this.fn;
    const id = await c.pciConfigRead(s, f, R.PCI_VENDOR_ID, 4);
    if ((id & 0xffff) === 0xffff) throw new QtestError(`${this.who}: no PCI function at 00:${hex2(s)}.${f} (is "${this.opts.device}" an ISA device? then give its regions with a base)`);
    const classRev = await c.pciConfigRead(s, f, R.PCI_REVISION_ID, 4);
    const subsys = await c.pciConfigRead(s, f, R.PCI_SUBSYSTEM_VENDOR_ID, 4);
    const pin = await c.pciConfigRead(s, f, R.PCI_INTERRUPT_PIN, 1);
    const config: NonNullable<PciIdentity['config']> = [];
    for (let reg = 0x40; reg < 0x100; reg += 4) {
      const v = await c.pciConfigRead(s, f, reg, 4);
      if (v !== 0) config.push({ offset: reg, size: 4, value: v });
    }
    this.pci = {
      vendor: id & 0xffff,
      device: id >>> 16,
      revision: classRev & 0xff,
      classCode: classRev >>> 8,
      subsystemVendor: subsys & 0xffff,
      subsystem: subsys >>> 16,
      interruptPin: pin,
      ...(config.length ? { config } : {}),
    };
    const bars = await sizeBars(c, s, f, this.who);
    const chosen = regions.length ? regions : bars.map((b) => ({ name: `bar${b.index}`, bar: b.index }));
    let io = this.opts.ioBase ?? DEFAULT_IO_BASE;
    let mem = this.opts.mmioBase ?? DEFAULT_MMIO_BASE;
    for (const want of chosen) {
      const legacy = fixed(want);
      if (legacy) {
        this.placed.push(legacy);
        continue;
      }
      const index = (want as { bar: number }).bar; // not fixed: a BAR region
      const bar: SizedBar | undefined = bars.find((b) => b.index === index);
      if (!bar) throw new QtestError(`${this.who}: properties.regions names BAR${index} but the device implements ${bars.length ? bars.map((b) => `BAR${b.index}`).join(', ') : 'no BAR'}`);
      const align = Math.max(bar.size, bar.io ? 4 : 0x1000);
      const base = bar.io ? (io = alignUp(io, align)) : (mem = alignUp(mem, align));
      if (bar.io && base + bar.size > 0x1_0000) throw new QtestError(`${this.who}: BAR${bar.index} (${bar.size} ports) does not fit below 0x10000 from ioBase`);
      if (bar.io) io += bar.size;
      else mem += bar.size;
      this.placed.push({ info: { name: want.name, space: bar.io ? 'pio' : 'mmio', size: bar.size, bar: bar.index }, qemuBase: base, is64: bar.is64 });
    }
    await this.program();
  }

  /** Put the placed BARs into QEMU's function, turn decoding on, route INTx (at start and after a reset). */
  private async program(): Promise<void> {
    if (this.slot === null) return;
    const c = this.client;
    const s = this.slot;
    const f = this.fn;
    // Legacy ports decode with I/O space on (QEMU's PIIX3 IDE keeps them on regardless).
    let decode = this.placed.some((p) => p.info.bar === undefined) ? R.PCI_COMMAND_IO : 0;
    for (const p of this.placed) {
      const bar = p.info.bar;
      if (bar === undefined) continue;
      await programBar(c, s, f, bar, p.qemuBase, p.info.space === 'pio', this.who);
      if (p.is64) await c.pciConfigWrite(s, f, R.PCI_BASE_ADDRESS_0 + 4 * (bar + 1), 4, 0);
      decode |= p.info.space === 'pio' ? R.PCI_COMMAND_IO : R.PCI_COMMAND_MEMORY;
    }
    await enableCommand(c, s, f, decode);
    if (this.pci?.interruptPin && this.irq !== null) {
      await routePirqs(c, this.irq);
      await c.pciConfigWrite(s, f, R.PCI_INTERRUPT_LINE, 1, this.irq);
    }
  }

  describe(): DeviceDescription {
    return {
      kind: 'qemu',
      regions: this.placed.map((p) => p.info),
      // A PCI function without INTx may still raise a legacy IRQ (the PIIX3 IDE's 14) when irq says so.
      ...(this.irq !== null && (this.pci === undefined || this.pci.interruptPin !== 0 || this.opts.irq !== undefined) ? { irq: this.irq } : {}),
      ...(this.pci ? { pci: this.pci } : {}),
      properties: [
        { name: 'device', value: this.opts.device ?? '', help: 'the QEMU device model (-device NAME); empty: a function the machine has built in' },
        { name: 'args', value: this.opts.args ?? '', help: 'more -device options' },
        ...(this.slot !== null ? [{ name: 'function', value: `00:${hex2(this.slot)}.${this.fn}`, help: 'the PCI function on QEMU\'s bus 0' }] : []),
        { name: 'qemuPid', value: this.client.pid, help: 'process id of the QEMU that owns the real device model' },
        ...this.placed.map((p) => ({ name: `${p.info.name}.qemuBase`, value: p.qemuBase, help: `where QEMU decodes region ${p.info.name}, not what the guest sees` })),
      ],
    };
  }

  read(region: number, offset: number, size: DevSize): Promise<number> {
    return this.queue.run(async () => {
      const p = this.at(region, offset, size);
      if (!p) return allOnes(size);
      return p.info.space === 'pio' ? this.client.in(size, p.qemuBase + offset) : readMemOf(this.client, size, p.qemuBase + offset);
    });
  }

  write(region: number, offset: number, size: DevSize, value: number): Promise<void> {
    return this.queue.run(async () => {
      const p = this.at(region, offset, size);
      if (!p) return;
      const v = (value & allOnes(size)) >>> 0;
      await (p.info.space === 'pio' ? this.client.out(size, p.qemuBase + offset, v) : writeMemOf(this.client, size, p.qemuBase + offset, v));
    });
  }

  readString(region: number, offset: number, size: DevSize, count: number): Promise<Uint8Array> {
    return this.queue.run(async () => {
      const p = this.at(region, offset, size);
      if (!p) return new Uint8Array(count * size).fill(0xff);
      if (p.info.space === 'pio') return this.client.inString(size, p.qemuBase + offset, count);
      const values = await Promise.all(Array.from({ length: count }, () => readMemOf(this.client, size, p.qemuBase + offset)));
      return packLe(values, size);
    });
  }

  writeString(region: number, offset: number, size: DevSize, data: Uint8Array): Promise<void> {
    return this.queue.run(async () => {
      const p = this.at(region, offset, size);
      if (!p || data.length % size !== 0) return;
      if (p.info.space === 'pio') return this.client.outString(size, p.qemuBase + offset, data);
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      const writes: Promise<void>[] = [];
      for (let i = 0; i < data.length; i += size) writes.push(writeMemOf(this.client, size, p.qemuBase + offset, size === 1 ? view.getUint8(i) : size === 2 ? view.getUint16(i, true) : view.getUint32(i, true)));
      await Promise.all(writes);
    });
  }

  /**
   * Power-on reset: QMP system_reset resets every device of the machine (ours is the only
   * one in use), then the BARs, decoding and PIRQ routing that firmware would set are set again.
   */
  reset(): Promise<void> {
    return this.queue.run(async () => {
      const qmp = this.qmp!; // connected in open() before the device is handed out
      const done = qmp.nextEvent('RESET', 5000);
      await qmp.execute('system_reset');
      await done;
      this.counters.resets++;
      await this.program();
    });
  }

  metrics(): DeviceMetrics {
    return { ...this.counters, qtestCommands: this.client.commandCount };
  }

  async close(): Promise<void> {
    this.unsubscribe();
    this.qmp?.close();
    try {
      await this.client.close();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** The region of an access, or null (counted) when the access leaves it. */
  private at(region: number, offset: number, size: number): Placed | null {
    const p = this.placed[region];
    if (!p || !Number.isInteger(offset) || offset < 0 || offset + size > p.info.size) {
      this.counters.badAccess++;
      return null;
    }
    return p;
  }
}

/**
 * DeviceFactory for kind `qemu`: backend `{ type: 'qemu', binary?, memoryMiB?, extraArgs? }`,
 * properties `{ device?, args?, bus?, slot?, function?, regions?, irq?, ioBase?, mmioBase?, running? }`.
 */
export async function createQemuGeneric(ctx: { id?: string; edges: DeviceEdges; backend?: unknown; properties: Record<string, unknown> }): Promise<Device> {
  const where = `device ${ctx.id ?? 'qemu'}`;
  const b = QemuGenericBackendSchema.safeParse(ctx.backend ?? { type: 'qemu' });
  if (!b.success) throw new QtestError(`${where}: backend must be { type: 'qemu', binary?, memoryMiB?, extraArgs? }: ${b.error.issues.map((i) => `backend.${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const p = QemuGenericPropertiesSchema.safeParse(ctx.properties ?? {});
  if (!p.success) throw new QtestError(`${where}: bad properties: ${p.error.issues.map((i) => `properties.${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const { type: _t, ...backend } = b.data;
  return QemuGenericDevice.open(ctx.edges, { ...p.data, backend });
}

function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function packLe(values: number[], size: number): Uint8Array {
  const out = new Uint8Array(values.length * size);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => (size === 1 ? view.setUint8(i, v) : size === 2 ? view.setUint16(i * 2, v, true) : view.setUint32(i * 4, v, true)));
  return out;
}
