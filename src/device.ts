// The device contract (DESIGN.md "Style"): a device is a pure class with injected edges.
// It sees region offsets only, never absolute addresses; the bus owns addresses.

import type { Space } from './access.ts';

/** Widths a device sees. The bus splits an 8-byte access into two 4-byte ones (low first). */
export type DevSize = 1 | 2 | 4;

export interface RegionInfo {
  /** Region name, unique within the device (`cmd`, `ctl`, `bmide`, `regs`). */
  name: string;
  space: Exclude<Space, 'pcicfg'>;
  size: number;
  /** Fixed legacy address (ISA ports such as 0x1F0); absent for regions that only a BAR places. */
  legacyBase?: number;
  /** PCI BAR index that exposes this region, if any. */
  bar?: number;
}

export interface PciIdentity {
  vendor: number;
  device: number;
  revision: number;
  /** 24-bit class code: class << 16 | subclass << 8 | prog-if. */
  classCode: number;
  subsystemVendor?: number;
  subsystem?: number;
  /** Interrupt pin: 1 = INTA; 0 = none. */
  interruptPin: number;
  /** Device-specific configuration registers (0x40-0xFF): initial value and writable bits. */
  config?: Array<{ offset: number; size: 1 | 2 | 4; value: number; writable?: number }>;
}

export interface PropertyInfo {
  name: string;
  value: unknown;
  help: string;
}

export interface DeviceDescription {
  kind: string;
  regions: RegionInfo[];
  /** Default IRQ line (ISA numbering), if the device raises one. */
  irq?: number;
  pci?: PciIdentity;
  properties: PropertyInfo[];
}

/** The level of the device's interrupt line; the MUX turns it into per-guest virtual IRQs. */
export interface IrqLine {
  set(level: boolean): void;
}

/** Bus-master DMA handed to a device. Returns null / false when the MUX refused (outside the owner's window). */
export interface DmaPort {
  read(addr: number, len: number): Promise<Uint8Array | null>;
  write(addr: number, data: Uint8Array): Promise<boolean>;
}

/** Monotonic time in ns, injected so models and policies never read a clock. */
export type Clock = () => number;

/**
 * Where a device reports a host-side failure: a backend's I/O error (file, NBD), QEMU gone
 * (qtest). The guest sees the device's error bits; the user sees this, logged by the
 * supervisor with the device's id. A guest's own mistakes are counted (metrics()), not
 * reported here. The device keeps serving after a report.
 */
export interface DeviceLog {
  /** `what`: the operation that failed, in the device's words ("READ DMA at LBA 8"). */
  hostError(what: string, err: unknown): void;
}

export interface DeviceEdges {
  irq: IrqLine;
  dma: DmaPort;
  clock: Clock;
  /** Host failures (absent: nobody listens, as in a bare model under test). */
  log?: DeviceLog;
}

/** Counters a device keeps for a guest's mistakes (counted, not thrown). */
export interface DeviceMetrics {
  [name: string]: number;
}

export interface Device {
  describe(): DeviceDescription;
  /**
   * Register read. Models return a number; a remote physical device (QEMU over qtest)
   * returns a promise. `region` indexes describe().regions.
   */
  read(region: number, offset: number, size: DevSize): number | Promise<number>;
  write(region: number, offset: number, size: DevSize, value: number): void | Promise<void>;
  /** Optional fast string I/O (`rep insw` of a data port): count elements of `size`. */
  readString?(region: number, offset: number, size: DevSize, count: number): Uint8Array | Promise<Uint8Array>;
  writeString?(region: number, offset: number, size: DevSize, data: Uint8Array): void | Promise<void>;
  /** Hardware reset (power-on state). */
  reset(): void | Promise<void>;
  /** Counters of guest mistakes (bad width, unknown register, ...). */
  metrics(): DeviceMetrics;
  /** Release host resources held through edges/backends. */
  close?(): Promise<void>;
}
