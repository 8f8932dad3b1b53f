// QEMU's own ne2k_pci as the physical network card, driven over qtest, with the same Device
// interface and wire edge (src/devices/ne2k/wire.ts) as our model.
//
// A NIC needs a running VM: QEMU does not deliver frames while stopped (-S), so QEMU runs with
// a BIOS that only halts (64 KiB of HLT) and qtest drives the devices while the CPU sleeps.
// No firmware programs the card, so BAR0, the PCI command register and the PIIX3 PIRQ routing
// are set here; the card's INTA then shows as `IRQ raise/lower N` on the IOAPIC.
// Frames: by default a `-netdev socket,udp=` pair on loopback, one datagram per frame, bridged
// to the wire edge (what QEMU transmits goes to wire.send; what the wire delivers is sent to
// QEMU and arrives asynchronously: the receiver answers 'queued'). With `netdev` QEMU carries
// the frames itself (a tap, user networking...), and the wire is not used.

import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { QtestClient, QtestError, type QtestOptions } from '../backends/qtest.ts';
import type { DevSize, Device, DeviceDescription, DeviceEdges, DeviceMetrics } from '../device.ts';
import { NE2K_PCI, NE2K_REGIONS } from './ne2k/describe.ts';
import { parseMac } from './ne2k/memory.ts';
import { DEFAULT_MAC, ETH_FRAME_MAX_TAGGED, NE_BAR_SIZE, NE_CMD, NE_RESET, E8390_NODMA, E8390_STOP, EN0_IMR } from './ne2k/regs.ts';
import { NullWire, type NicWire, type RxResult } from './ne2k/wire.ts';
import { allOnes, programBar, routePirqs, SerialQueue, writeHaltBios } from './qemu-pci.ts';

/** PCI slot QEMU puts the card in (00:03.0). */
export const QEMU_NE2K_SLOT = 3;
const PCI_VENDOR_ID = 0x00;
const PCI_COMMAND = 0x04;
const PCI_COMMAND_IO = 0x1;
const PCI_CLASS_REVISION = 0x08;

export interface QemuNe2kOptions extends Omit<QtestOptions, 'interceptIrq' | 'stopped' | 'image'> {
  /** MAC in QEMU's PROM; default 52:54:00:12:34:56. */
  mac?: string;
  /** I/O base programmed into BAR0 (256-byte aligned: QEMU's BAR is 0x100); default 0xC100. */
  ioBase?: number;
  /** ISA IRQ the PIRQ lines are routed to; default 11. */
  irq?: number;
  /** A QEMU -netdev value without the id (`tap,ifname=t0,script=no,downscript=no`); default: UDP to the wire. */
  netdev?: string;
}

export class QemuNe2kDevice implements Device {
  private readonly counters = { badAccess: 0, framesToQemu: 0, framesFromQemu: 0, oversizeToQemu: 0 };
  private readonly queue = new SerialQueue();
  private irqOut = false;
  private classRevision = 0x0200_0000;
  private readonly unsubscribe: () => void;

  private constructor(
    readonly client: QtestClient,
    private readonly edges: DeviceEdges,
    private readonly wire: NicWire,
    private readonly udp: { socket: dgram.Socket; qemuPort: number } | null,
    private readonly dir: string,
    readonly ioBase: number,
    readonly irq: number,
    readonly mac: string,
  ) {
    const offIrq = client.onIrq((line, level) => {
      if (line !== irq || level === this.irqOut) return;
      this.irqOut = level;
      edges.irq.set(level);
    });
    // QEMU gone: reported at once on the log edge, not only at the next access.
    const offExit = client.onExit((err) => edges.log?.hostError('QEMU (the physical device over qtest)', err));
    this.unsubscribe = () => {
      offIrq();
      offExit();
    };
    if (udp) {
      udp.socket.on('message', (msg, from) => {
        if (from.port !== udp.qemuPort) return; // only QEMU's end of the pair speaks here
        this.counters.framesFromQemu++;
        wire.send(new Uint8Array(msg.buffer, msg.byteOffset, msg.length));
      });
      wire.attach((frame) => this.toQemu(frame));
    }
  }

  /** Start QEMU with the card, program its PCI function and return the device. */
  static async open(edges: DeviceEdges, wire: NicWire, options: QemuNe2kOptions = {}): Promise<QemuNe2kDevice> {
    const { mac = DEFAULT_MAC, ioBase = 0xc100, irq = 11, netdev, extraArgs = [], ...qtest } = options;
    const macBytes = parseMac(mac);
    if (!macBytes || macBytes[0] & 1) throw new QtestError(`qemu-ne2k: mac "${mac}" is not a unicast MAC such as 52:54:00:12:34:56`);
    if (ioBase % 0x100 !== 0 || ioBase < 0x1000 || ioBase > 0xff00) throw new QtestError(`qemu-ne2k: ioBase 0x${ioBase.toString(16)} must be a 256-byte aligned port in 0x1000-0xFF00`);
    if (!Number.isInteger(irq) || irq < 3 || irq > 15) throw new QtestError(`qemu-ne2k: irq ${irq} must be an ISA IRQ 3-15`);
    const dir = mkdtempSync(join(tmpdir(), 'muxvisor-qemu-ne2k-'));
    let udp: { socket: dgram.Socket; qemuPort: number } | null = null;
    try {
      const bios = writeHaltBios(dir);
      let netdevArg: string;
      if (netdev === undefined) {
        const socket = dgram.createSocket('udp4');
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.bind(0, '127.0.0.1', () => resolve());
        });
        const qemuPort = await freeUdpPort();
        udp = { socket, qemuPort };
        netdevArg = `socket,id=n0,udp=127.0.0.1:${socket.address().port},localaddr=127.0.0.1:${qemuPort}`;
      } else netdevArg = `${netdev},id=n0`;
      const client = await QtestClient.start({
        ...qtest,
        memoryMiB: qtest.memoryMiB ?? 16,
        stopped: false,
        interceptIrq: 'ioapic',
        extraArgs: ['-bios', bios, '-netdev', netdevArg, '-device', `ne2k_pci,netdev=n0,mac=${mac},addr=0${QEMU_NE2K_SLOT}`, ...extraArgs],
      });
      const dev = new QemuNe2kDevice(client, edges, netdev === undefined ? wire : new NullWire(), udp, dir, ioBase, irq, mac);
      try {
        await dev.init();
      } catch (err) {
        await dev.close();
        throw err;
      }
      return dev;
    } catch (err) {
      udp?.socket.close();
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** No firmware ran: place BAR0, enable I/O decoding, route every PIRQ to our IRQ. */
  private async init(): Promise<void> {
    const c = this.client;
    const id = await c.pciConfigRead(QEMU_NE2K_SLOT, 0, PCI_VENDOR_ID, 4);
    if (id !== ((NE2K_PCI.device << 16) | NE2K_PCI.vendor) >>> 0) throw new QtestError(`qemu-ne2k: 00:03.0 is 0x${id.toString(16)}, expected ne2k_pci 10ec:8029`);
    this.classRevision = await c.pciConfigRead(QEMU_NE2K_SLOT, 0, PCI_CLASS_REVISION, 4);
    await programBar(c, QEMU_NE2K_SLOT, 0, 0, this.ioBase, true, 'qemu-ne2k');
    await c.pciConfigWrite(QEMU_NE2K_SLOT, 0, PCI_COMMAND, 2, PCI_COMMAND_IO);
    await routePirqs(c, this.irq);
  }

  describe(): DeviceDescription {
    return {
      kind: 'qemu-ne2k',
      regions: NE2K_REGIONS,
      irq: this.irq,
      pci: { ...NE2K_PCI, revision: this.classRevision & 0xff, classCode: this.classRevision >>> 8 },
      properties: [
        { name: 'mac', value: this.mac, help: 'MAC in QEMU\'s PROM' },
        { name: 'qemuPid', value: this.client.pid, help: 'process id of the QEMU that owns the real device model' },
        { name: 'ioBase', value: this.ioBase, help: 'I/O base programmed into QEMU\'s BAR0, not what the guest sees' },
        { name: 'netdev', value: this.udp ? `udp 127.0.0.1:${this.udp.qemuPort}` : 'QEMU\'s own', help: 'how frames reach QEMU\'s card' },
      ],
    };
  }

  read(region: number, offset: number, size: DevSize): Promise<number> {
    return this.serial(async () => {
      const port = this.portOf(region, offset, size);
      return port === null ? allOnes(size) : this.client.in(size, port);
    });
  }

  write(region: number, offset: number, size: DevSize, value: number): Promise<void> {
    return this.serial(async () => {
      const port = this.portOf(region, offset, size);
      if (port !== null) await this.client.out(size, port, (value & allOnes(size)) >>> 0);
    });
  }

  readString(region: number, offset: number, size: DevSize, count: number): Promise<Uint8Array> {
    return this.serial(async () => {
      const port = this.portOf(region, offset, size);
      return port === null ? new Uint8Array(count * size).fill(0xff) : this.client.inString(size, port, count);
    });
  }

  writeString(region: number, offset: number, size: DevSize, data: Uint8Array): Promise<void> {
    return this.serial(async () => {
      const port = this.portOf(region, offset, size);
      if (port === null || data.length % size !== 0) return;
      await this.client.outString(size, port, data);
    });
  }

  /**
   * QEMU offers no power-on reset through qtest: read the reset port (QEMU sets ISR.RST and
   * rewrites its PROM), stop the card and mask its interrupts.
   */
  reset(): Promise<void> {
    return this.serial(async () => {
      await this.client.inb(this.ioBase + NE_RESET);
      await this.client.outb(this.ioBase + NE_CMD, E8390_NODMA | E8390_STOP);
      await this.client.outb(this.ioBase + EN0_IMR, 0);
    });
  }

  metrics(): DeviceMetrics {
    return { ...this.counters, qtestCommands: this.client.commandCount };
  }

  async close(): Promise<void> {
    this.unsubscribe();
    this.wire.attach(null);
    try {
      await this.client.close();
    } finally {
      this.udp?.socket.close();
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** A frame from the wire to QEMU's netdev: one datagram. QEMU's card decides later. */
  private toQemu(frame: Uint8Array): RxResult {
    if (frame.length < 6 || frame.length > ETH_FRAME_MAX_TAGGED) {
      this.counters.oversizeToQemu++;
      return 'oversize';
    }
    this.counters.framesToQemu++;
    this.udp!.socket.send(Buffer.from(frame), this.udp!.qemuPort, '127.0.0.1'); // toQemu is attached only with udp
    return 'queued';
  }

  private portOf(region: number, offset: number, size: number): number | null {
    if (region !== 0 || !Number.isInteger(offset) || offset < 0 || offset + size > NE_BAR_SIZE) {
      this.counters.badAccess++;
      return null;
    }
    return this.ioBase + offset;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }
}

/** A UDP port free on loopback now (bound and released: QEMU binds it a moment later). */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve());
  });
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** The config's `backend: { type: 'qemu', ... }` for kind qemu-ne2k. */
export const QemuNe2kBackendSchema = z.strictObject({
  type: z.literal('qemu'),
  netdev: z.string().min(1).optional().meta({ description: 'a QEMU -netdev value without id (default: UDP on loopback to the wire)' }),
  binary: z.string().min(1).optional(),
  memoryMiB: z.number().int().positive().optional(),
  extraArgs: z.array(z.string()).optional(),
});

export const QemuNe2kPropertiesSchema = z.strictObject({
  mac: z.string().refine((s) => parseMac(s) !== null && (parseMac(s)![0] & 1) === 0, 'expected a unicast MAC such as "52:54:00:12:34:56"').optional(),
  ioBase: z.number().int().optional(),
  irq: z.number().int().min(3).max(15).optional(),
  machine: z.string().optional(),
  deadlineNs: z.number().positive().optional(),
});

/** DeviceFactory for kind `qemu-ne2k`: backend `{ type: 'qemu', netdev? }`; without netdev the frames go nowhere. */
export async function createQemuNe2k(ctx: { id?: string; edges: DeviceEdges; backend?: unknown; properties: Record<string, unknown> }): Promise<Device> {
  const where = `device ${ctx.id ?? 'qemu-ne2k'}`;
  const b = QemuNe2kBackendSchema.safeParse(ctx.backend);
  if (!b.success) throw new QtestError(`${where}: backend must be { type: 'qemu', netdev? }: ${b.error.issues.map((i) => `backend.${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const p = QemuNe2kPropertiesSchema.safeParse(ctx.properties ?? {});
  if (!p.success) throw new QtestError(`${where}: bad properties: ${p.error.issues.map((i) => `properties.${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const { type: _t, ...qemu } = b.data;
  const { machine: _m, deadlineNs: _d, ...props } = p.data;
  return QemuNe2kDevice.open(ctx.edges, new NullWire(), { ...qemu, ...props });
}
