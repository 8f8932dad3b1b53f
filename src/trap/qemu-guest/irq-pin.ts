// The proxied function's interrupt, delivered by driving the guest QEMU's interrupt
// controllers through its private qtest socket (LINUX.md: under TCG the proxy's irqfd reaches
// nothing). For a GSI below 16 both the i8259 pin and the IOAPIC pin are set, as QEMU's own
// gsi_handler() does, so ACPI (IOAPIC) and `noapic` (PIC) guests both see it. The paths are
// found through QMP, never hard-coded.

import { connect, type Socket } from 'node:net';
import type { QmpClient } from './qmp.ts';

export class IrqPinError extends Error {
  constructor(message: string) {
    super(`guest interrupt: ${message}`);
    this.name = 'IrqPinError';
  }
}

/** A qtest connection to a QEMU that serves `-qtest unix:SOCK,server=on,wait=off`. */
export class QtestLine {
  private rx = '';
  private readonly waiters: Array<{ line: string; resolve: (s: string) => void; reject: (e: Error) => void }> = [];

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (s: string) => {
      this.rx += s;
      let nl: number;
      while ((nl = this.rx.indexOf('\n')) >= 0) {
        const line = this.rx.slice(0, nl);
        this.rx = this.rx.slice(nl + 1);
        if (line.startsWith('IRQ ')) continue; // intercepted lines are not ours
        const w = this.waiters.shift();
        if (!w) continue;
        if (line === 'OK' || line.startsWith('OK ')) w.resolve(line.slice(2).trim());
        else w.reject(new IrqPinError(`qtest '${w.line}': ${line}`));
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      for (const w of this.waiters.splice(0)) w.reject(new IrqPinError(`qtest connection closed before '${w.line}' was answered`));
    });
  }

  static async connect(path: string, timeoutMs = 10_000): Promise<QtestLine> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        return new QtestLine(
          await new Promise<Socket>((resolve, reject) => {
            const s = connect(path);
            s.once('connect', () => resolve(s));
            s.once('error', reject);
          }),
        );
      } catch (err) {
        if (Date.now() > until) throw new IrqPinError(`cannot connect to qtest at ${path}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  command(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ line, resolve, reject });
      this.socket.write(line + '\n', 'latin1');
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

interface QomEntry {
  name: string;
  type: string;
}

/** QOM paths of the IOAPIC and the two i8259s, found by type (and the PICs by their I/O base). */
async function controllers(qmp: QmpClient): Promise<{ ioapic: string; master: string; slave: string }> {
  const found: { ioapic?: string; master?: string; slave?: string } = {};
  const visit = async (path: string, depth: number): Promise<void> => {
    if (depth > 3) return;
    const entries = await qmp.execute<QomEntry[]>('qom-list', { path });
    for (const e of entries) {
      if (!e.type.startsWith('child<')) continue;
      const child = `${path === '/' ? '' : path}/${e.name}`;
      const type = e.type.slice(6, -1);
      if (type === 'ioapic' || type === 'kvm-ioapic') found.ioapic = child;
      else if (type === 'isa-i8259' || type === 'kvm-i8259') {
        const base = await qmp.execute<number>('qom-get', { path: child, property: 'iobase' });
        if (base === 0x20) found.master = child;
        else if (base === 0xa0) found.slave = child;
      } else await visit(child, depth + 1);
    }
  };
  await visit('/machine', 0);
  if (!found.ioapic || !found.master || !found.slave) throw new IrqPinError(`interrupt controllers not found under /machine (ioapic ${found.ioapic ?? '-'}, i8259 ${found.master ?? '-'}/${found.slave ?? '-'})`);
  return { ioapic: found.ioapic, master: found.master, slave: found.slave };
}

interface PciDeviceInfo {
  qdev_id?: string;
  irq?: number;
}

/** The GSI QEMU routed the proxied function's INTx to (query-pci's `irq`). */
async function gsiOf(qmp: QmpClient, deviceId: string): Promise<number> {
  const buses = await qmp.execute<Array<{ devices: PciDeviceInfo[] }>>('query-pci');
  for (const b of buses) for (const d of b.devices) if (d.qdev_id === deviceId && typeof d.irq === 'number') return d.irq;
  throw new IrqPinError(`PCI function ${deviceId} not found in query-pci, or it has no interrupt`);
}

/** Raise and lower one GSI of a guest's QEMU. Levels are sent in order; a repeat is not re-sent. */
export class GuestIrqPin {
  private level = false;
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly qtest: QtestLine,
    readonly gsi: number,
    private readonly targets: Array<[path: string, pin: number]>,
  ) {}

  static async open(qmp: QmpClient, qtest: QtestLine, deviceId: string): Promise<GuestIrqPin> {
    const gsi = await gsiOf(qmp, deviceId);
    const c = await controllers(qmp);
    const targets: Array<[string, number]> = [[c.ioapic, gsi]];
    if (gsi < 8 && gsi !== 2) targets.push([c.master, gsi]);
    else if (gsi >= 8 && gsi < 16) targets.push([c.slave, gsi - 8]);
    return new GuestIrqPin(qtest, gsi, targets);
  }

  /** Set the line; resolves when QEMU took it (lower before answering the access that lowered it). */
  set(level: boolean): Promise<void> {
    if (level === this.level) return this.chain.then(() => undefined);
    this.level = level;
    const v = level ? 1 : 0;
    this.chain = this.chain.then(() => Promise.all(this.targets.map(([path, pin]) => this.qtest.command(`set_irq_in ${path} unnamed-gpio-in ${pin} ${v}`))));
    return this.chain.then(() => undefined);
  }
}
