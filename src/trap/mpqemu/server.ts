// The remote side of QEMU's multi-process protocol: each guest QEMU's x-pci-proxy-dev is
// one connection, serving one PCI function backed by a Device (src/device.ts). Per
// connection: the function's configuration space and the BARs that guest programmed
// (function.ts), its RAM from SYNC_SYSMEM (guest-memory.ts, the device's DMA port) and the
// irqfd pair from SET_IRQFD (kept for KVM hosts; under TCG the proxy never uses them).
//
// Requests (config and BAR accesses, DEVICE_RESET) block the guest's vCPU until RET; the
// proxy has one outstanding at a time. A device that answers with a promise pauses reading
// that socket until the answer went out, so messages are served in order.
//
// A malformed message (bad size, unknown command, wrong descriptor count, an address outside
// the programmed BARs, an access size not 1/2/4/8, RAM that cannot be mapped) is counted,
// logged (rate-limited) and disconnects that guest only: its socket is closed, its RAM
// unmapped, its descriptors closed. Every other connection and the supervisor go on.

import { EventEmitter } from 'node:events';
import type { DevSize, Device } from '../../device.ts';
import { LogLimiter } from '../../log-limit.ts';
import { type Logger, silentLogger } from '../../log.ts';
import { Counters } from '../../metrics.ts';
import {
  type BarAccessMsg,
  describeMessage,
  MpqemuMalformed,
  MPQEMU_CMD_BAR_READ,
  MPQEMU_CMD_BAR_WRITE,
  MPQEMU_CMD_DEVICE_RESET,
  MPQEMU_CMD_PCI_CFGREAD,
  MPQEMU_CMD_PCI_CFGWRITE,
  MPQEMU_CMD_RET,
  MPQEMU_CMD_SET_IRQFD,
  MPQEMU_CMD_SYNC_SYSMEM,
  type MpqemuMessage,
} from './codec.ts';
import { ProxiedFunction, type MappedBar } from './function.ts';
import { GuestMemory, sectionsOf, type RamSection } from './guest-memory.ts';
import { MpqemuLink, type MpqemuLinkError } from './link.ts';
import { mpqemuAddon } from './native.ts';

const PCI_CONFIG_SIZE = 256; // x-pci-proxy-dev is a conventional PCI function
const ALL_ONES: Record<DevSize, number> = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff };

export interface IrqfdPair {
  /** Writing 1 raises the function's GSI (KVM irqfd). */
  irq: number;
  /** KVM signals it when the guest acknowledged a level interrupt (re-raise if still pending). */
  resample: number;
}

export type CloseReason = 'eof' | 'malformed' | 'link-error' | 'internal-error' | 'closed';

export interface CloseInfo {
  reason: CloseReason;
  error?: Error;
}

export interface ConnectionStats {
  messages: number;
  cfgReads: number;
  cfgWrites: number;
  barReads: number;
  barWrites: number;
  resets: number;
  sysmem: number;
  /** BAR accesses past the bytes the device backs (read all-ones, write dropped). */
  barHoles: number;
  deviceErrors: number;
  /** Time spent serving requests, from the message to its RET being sent (ns). */
  serviceNs: number;
}

export interface AttachOptions {
  /** The guest's name in logs and errors. */
  name: string;
  device: Device;
  /** Guest RAM to fill from SYNC_SYSMEM (hand the same object to the device as its DMA port). */
  memory?: GuestMemory;
  /** Refuse RAM fds not sealed against shrinking (default true; see GuestMemoryOptions). */
  requireSealedRam?: boolean;
  /** Reset the device on DEVICE_RESET (default true; a MUX port decides what a guest's reset means). */
  resetDevice?: boolean;
}

type Events = { irqfd: [IrqfdPair]; sysmem: [readonly RamSection[]]; close: [CloseInfo] };

const isPromise = <T>(v: unknown): v is Promise<T> => typeof (v as Promise<T> | null)?.then === 'function';

/** f(v) now when v is a value; after it when v is a promise (no promise for a synchronous device). */
function chain<T, U>(v: T | Promise<T>, f: (x: T) => U | Promise<U>): U | Promise<U> {
  return isPromise<T>(v) ? v.then(f) : f(v);
}

export class MpqemuConnection extends EventEmitter<Events> {
  readonly fn: ProxiedFunction;
  readonly memory: GuestMemory;
  readonly stats: ConnectionStats = { messages: 0, cfgReads: 0, cfgWrites: 0, barReads: 0, barWrites: 0, resets: 0, sysmem: 0, barHoles: 0, deviceErrors: 0, serviceNs: 0 };
  private irq: IrqfdPair | null = null;
  private readonly link: MpqemuLink;
  private closeInfo: CloseInfo | null = null;
  private started = 0n;

  /** Takes ownership of `fd`. */
  constructor(
    fd: number,
    private readonly options: AttachOptions,
    private readonly server: MpqemuServer,
  ) {
    super();
    this.fn = new ProxiedFunction(options.device);
    this.memory = options.memory ?? new GuestMemory({ requireSeal: options.requireSealedRam ?? true });
    this.link = new MpqemuLink(fd, {
      message: (msg) => this.onMessage(msg),
      malformed: (err, raw) => this.malformed(err, raw),
      end: (err) => this.end(err),
    });
  }

  get name(): string {
    return this.options.name;
  }

  /** The irqfd pair of the last SET_IRQFD (owned by the connection), or null. */
  get irqfds(): IrqfdPair | null {
    return this.irq;
  }

  /** Why the connection closed, or null while it is open. */
  get closed(): CloseInfo | null {
    return this.closeInfo;
  }

  /** Closes the socket (the guest's proxy sees EOF), unmaps its RAM, closes its descriptors. */
  close(reason: CloseReason = 'closed', error?: Error): void {
    if (this.closeInfo) return;
    this.closeInfo = { reason, error };
    this.link.close();
    this.memory.close();
    this.setIrqfds(null);
    this.server.forget(this);
    this.emit('close', this.closeInfo);
  }

  private onMessage(msg: MpqemuMessage): void {
    this.stats.messages++;
    try {
      this.serve(msg);
    } catch (err) {
      if (err instanceof MpqemuMalformed) return this.malformed(err, null, msg);
      // Our own failure: it must not take the supervisor (or the other guests) down.
      this.server.counters.inc('internalError');
      this.server.logger.error({ guest: this.name, err, message: describeMessage(msg) }, 'mpqemu: serving a message failed; disconnecting the guest');
      this.close('internal-error', err as Error);
    }
  }

  private serve(msg: MpqemuMessage): void {
    switch (msg.cmd) {
      case MPQEMU_CMD_SYNC_SYSMEM: {
        let sections: RamSection[];
        try {
          sections = sectionsOf(msg);
        } catch (err) {
          for (const fd of msg.fds) mpqemuAddon().close(fd);
          throw err;
        }
        this.stats.sysmem++;
        this.memory.replace(sections); // owns the fds from here, even when it throws
        this.emit('sysmem', this.memory.sections());
        return;
      }
      case MPQEMU_CMD_SET_IRQFD:
        this.setIrqfds({ irq: msg.fds[0], resample: msg.fds[1] });
        this.emit('irqfd', this.irq!); // just set
        return;
      case MPQEMU_CMD_PCI_CFGREAD:
      case MPQEMU_CMD_PCI_CFGWRITE: {
        this.started = process.hrtime.bigint();
        if (msg.addr + msg.len > PCI_CONFIG_SIZE) throw new MpqemuMalformed('bad-field', `${describeMessage(msg)}: past the ${PCI_CONFIG_SIZE}-byte configuration space`);
        if (msg.cmd === MPQEMU_CMD_PCI_CFGREAD) {
          this.stats.cfgReads++;
          return this.reply(BigInt(this.fn.read(msg.addr, msg.len)));
        }
        this.stats.cfgWrites++;
        this.fn.write(msg.addr, msg.len, msg.val);
        return this.reply(0n);
      }
      case MPQEMU_CMD_BAR_READ:
      case MPQEMU_CMD_BAR_WRITE:
        this.started = process.hrtime.bigint();
        return this.bar(msg);
      case MPQEMU_CMD_DEVICE_RESET: {
        this.started = process.hrtime.bigint();
        this.stats.resets++;
        this.fn.reset();
        const r = this.options.resetDevice === false ? undefined : this.guard(() => this.options.device.reset(), undefined);
        return this.after(r, () => this.reply(null)); // QEMU's remote answers a reset with a RET without body
      }
      case MPQEMU_CMD_RET:
        throw new MpqemuMalformed('unexpected-command', 'RET sent to the remote: only the remote answers');
    }
  }

  private bar(msg: BarAccessMsg): void {
    const route = this.fn.route(msg.addr, msg.size, msg.memory);
    if (!route) {
      const bars = this.fn.bars().map((b) => `BAR${b.index} ${b.io ? 'pio' : 'mmio'} 0x${b.base.toString(16)}+0x${b.size.toString(16)}`).join(', ') || 'none decoding';
      throw new MpqemuMalformed('bad-address', `${describeMessage(msg)}: outside the BARs the guest programmed (${bars})`);
    }
    const write = msg.cmd === MPQEMU_CMD_BAR_WRITE;
    if (write) this.stats.barWrites++;
    else this.stats.barReads++;
    const { bar, offset } = route;
    if (msg.size !== 8) {
      const v = this.access(bar, offset, msg.size, write, Number(msg.val & 0xffff_ffffn));
      return this.after(v, (x) => this.reply(write ? 0n : BigInt(x)));
    }
    // 8 bytes: two 4-byte accesses, low first (as src/bus.ts splits them).
    const v = chain(this.access(bar, offset, 4, write, Number(msg.val & 0xffff_ffffn)), (lo) =>
      chain(this.access(bar, offset + 4, 4, write, Number(msg.val >> 32n)), (hi) => (BigInt(hi) << 32n) | BigInt(lo)),
    );
    return this.after(v, (x) => this.reply(write ? 0n : x));
  }

  /** One device access of at most 4 bytes; a hole past the region reads all-ones. */
  private access(bar: MappedBar, offset: number, size: DevSize, write: boolean, value: number): number | Promise<number> {
    if (offset + size > bar.regionSize) {
      this.stats.barHoles++;
      this.server.counters.inc('barHole');
      return write ? 0 : ALL_ONES[size];
    }
    const dev = this.options.device;
    const mask = ALL_ONES[size];
    if (write) {
      const r = this.guard(() => dev.write(bar.region, offset, size, (value & mask) >>> 0), undefined);
      return isPromise(r) ? r.then(() => 0) : 0;
    }
    // `>>> 0`: the answer as the unsigned bits of the access, whatever number the device returned.
    return chain(this.guard(() => dev.read(bar.region, offset, size), mask), (x) => (x & mask) >>> 0);
  }

  /** A device failure is the host's, not the guest's: counted, logged, answered with `fallback`. */
  private guard<T>(op: () => T | Promise<T>, fallback: T): T | Promise<T> {
    try {
      const r = op();
      return isPromise<T>(r) ? r.then(undefined, (err: unknown) => this.deviceFailed(err, fallback)) : r;
    } catch (err) {
      return this.deviceFailed(err, fallback);
    }
  }

  private deviceFailed<T>(err: unknown, fallback: T): T {
    this.stats.deviceErrors++;
    this.server.counters.inc('deviceError');
    this.server.logger.error({ guest: this.name, err }, 'mpqemu: the device failed an access; the guest gets a neutral answer');
    return fallback;
  }

  /** Runs `next` now for a value, or after the promise with the socket paused meanwhile. */
  private after<T>(v: T | Promise<T>, next: (x: T) => void): void {
    if (!isPromise<T>(v)) return next(v);
    this.link.pause();
    v.then((x) => {
      if (this.closeInfo) return;
      next(x);
      this.link.resume();
    }).catch((err: unknown) => {
      this.server.counters.inc('internalError');
      this.server.logger.error({ guest: this.name, err }, 'mpqemu: serving a request failed; disconnecting the guest');
      this.close('internal-error', err as Error);
    });
  }

  private reply(value: bigint | null): void {
    if (this.closeInfo) return;
    try {
      this.link.send({ cmd: MPQEMU_CMD_RET, value });
    } catch (err) {
      const code = (err as MpqemuLinkError).code;
      if (code === 'EPIPE' || code === 'ECONNRESET') {
        // The guest's QEMU went away while its request was served: an end, not a failure.
        this.server.logger.info({ guest: this.name }, 'mpqemu: the guest QEMU closed its proxy socket before its answer');
        return this.close('eof');
      }
      this.server.counters.inc('linkError');
      this.server.logger.warn({ guest: this.name, err }, 'mpqemu: reply not sent; disconnecting the guest');
      return this.close('link-error', err as Error);
    }
    this.stats.serviceNs += Number(process.hrtime.bigint() - this.started);
  }

  private setIrqfds(pair: IrqfdPair | null): void {
    if (this.irq) for (const fd of [this.irq.irq, this.irq.resample]) mpqemuAddon().close(fd);
    this.irq = pair;
  }

  private malformed(err: MpqemuMalformed, raw: Buffer | null, msg?: MpqemuMessage): void {
    if (this.closeInfo) return;
    this.server.noteMalformed(this.name, err, raw, msg);
    this.close('malformed', err);
  }

  private end(err: MpqemuLinkError | null): void {
    if (err) {
      this.server.counters.inc('linkError');
      this.server.logger.warn({ guest: this.name, err }, 'mpqemu: socket failed; disconnecting the guest');
    } else {
      this.server.logger.info({ guest: this.name }, 'mpqemu: the guest QEMU closed its proxy socket');
    }
    this.close(err ? 'link-error' : 'eof', err ?? undefined);
  }
}

export interface MpqemuServerOptions {
  logger?: Logger;
  /** Shared counters (default: the server's own). */
  counters?: Counters;
}

export class MpqemuServer {
  readonly logger: Logger;
  /** malformed, malformed.<kind>, barHole, deviceError, linkError, internalError, connections, disconnects. */
  readonly counters: Counters;
  private readonly live = new Set<MpqemuConnection>();
  private readonly limiter = new LogLimiter();

  constructor(options: MpqemuServerOptions = {}) {
    this.logger = options.logger ?? silentLogger;
    this.counters = options.counters ?? new Counters();
  }

  /** Serves one guest QEMU's proxy on `fd` (our end of its socketpair; owned from here on). */
  attach(fd: number, options: AttachOptions): MpqemuConnection {
    const c = new MpqemuConnection(fd, options, this);
    this.live.add(c);
    this.counters.inc('connections');
    return c;
  }

  connections(): MpqemuConnection[] {
    return [...this.live];
  }

  /** Closes every connection. */
  close(): void {
    for (const c of [...this.live]) c.close();
  }

  /** @internal */
  forget(c: MpqemuConnection): void {
    if (this.live.delete(c)) this.counters.inc('disconnects');
  }

  /** @internal Counted always; logged at most 20 a second per guest and kind. */
  noteMalformed(guest: string, err: MpqemuMalformed, raw: Buffer | null, msg?: MpqemuMessage): void {
    this.counters.inc('malformed');
    this.counters.inc(`malformed.${err.kind}`);
    const { log, leftOut } = this.limiter.take(`${guest}/${err.kind}`);
    if (!log) return;
    const fields = { guest, kind: err.kind, detail: err.message, ...(msg ? { message: describeMessage(msg) } : {}), ...(raw ? { bytes: raw.subarray(0, 64).toString('hex') } : {}), ...(leftOut ? { leftOut } : {}) };
    this.logger.warn(fields, 'mpqemu: malformed message; disconnecting the guest');
  }
}
