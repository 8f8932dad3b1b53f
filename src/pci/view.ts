// One guest's view of PCI configuration space: bus 0 with the host bridge at 00:00.0 and
// the functions of the devices granted to this guest. Reached through mechanism #1
// (ports 0xCF8 CONFIG_ADDRESS, 0xCFC-0xCFF CONFIG_DATA) and through the `pcicfg` space
// (addr = bus<<16 | dev<<11 | fn<<8 | reg). Each guest has its own copy: its command
// register and BAR writes stay its own. BAR relocation is not supported: a BAR written
// with another address reads back that address, but the device stays where it was mapped.

import { type Access, type Reply, allOnes, deniedReply, hex } from '../access.ts';
import { PciFunction } from './function.ts';
import * as R from './regs.ts';

export interface PciPlacement {
  slot: number;
  fn: number;
  fnConfig: PciFunction;
  /** Device id, for logs (`host-bridge` for 00:00.0). */
  owner: string;
}

/** Encode a pcicfg-space address. */
export function pcicfgAddress(bus: number, slot: number, fn: number, reg: number): number {
  return (bus << 16) | (slot << 11) | (fn << 8) | reg;
}

export function bdf(slot: number, fn: number): string {
  return `00:${slot.toString(16).padStart(2, '0')}.${fn}`;
}

export function isConf1Port(addr: number): boolean {
  return addr >= R.PCI_CONF1_ADDRESS_PORT && addr <= R.PCI_CONF1_DATA_PORT + 3;
}

export interface PciViewEvents {
  /** A guest mistake or an unsupported request worth a log line (BAR relocation, bad width). */
  note?(message: string, fields: Record<string, unknown>): void;
}

export class PciGuestView {
  private address = 0;
  private readonly functions = new Map<number, PciPlacement>();
  /** Accesses that were malformed (bad width, crossing the data window): counted, not thrown. */
  mistakes = 0;

  constructor(
    placements: PciPlacement[],
    private readonly events: PciViewEvents = {},
  ) {
    for (const p of placements) this.functions.set((p.slot << 3) | p.fn, p);
  }

  /** The placement at 00:slot.fn, if present. */
  at(slot: number, fn: number): PciPlacement | undefined {
    return this.functions.get((slot << 3) | fn);
  }

  /** An access to ports 0xCF8-0xCFF (mechanism #1). */
  ioAccess(acc: Access): Reply {
    const count = acc.count ?? 1;
    if (count > 1) return this.stringIo(acc, count);
    if (acc.size === 8) {
      this.mistake('8-byte port access', acc);
      return deniedReply(acc);
    }
    const port = acc.addr;
    const size = acc.size;
    if (port < R.PCI_CONF1_DATA_PORT) {
      const shift = (port - R.PCI_CONF1_ADDRESS_PORT) * 8;
      if (port + size > R.PCI_CONF1_DATA_PORT) {
        this.mistake('access straddles CONFIG_ADDRESS and CONFIG_DATA', acc);
        return deniedReply(acc);
      }
      if (acc.dir === 'read') return { value: Number((BigInt(this.address) >> BigInt(shift)) & BigInt(allOnes(size))) };
      // Only a dword write sets CONFIG_ADDRESS; byte writes (Linux's probe writes 0xCFB) are ignored.
      if (size === 4) this.address = (Number(acc.value ?? 0) & 0x80ff_fffc) >>> 0;
      return { value: 0 };
    }
    const within = port - R.PCI_CONF1_DATA_PORT;
    if (within + size > 4) {
      this.mistake('access crosses the end of CONFIG_DATA', acc);
      return deniedReply(acc);
    }
    if ((this.address & R.PCI_CONF1_ENABLE) === 0) return deniedReply(acc);
    const a = this.address;
    return this.config((a >>> 16) & 0xff, (a >>> 11) & 0x1f, (a >>> 8) & 7, (a & 0xfc) + within, acc);
  }

  /** An access to the pcicfg space. */
  cfgAccess(acc: Access): Reply {
    if (acc.size === 8 || (acc.count ?? 1) > 1) {
      this.mistake('pcicfg access must be 1, 2 or 4 bytes, single', acc);
      return deniedReply(acc);
    }
    const a = acc.addr;
    if (a > 0xff_ffff) return deniedReply(acc);
    return this.config((a >>> 16) & 0xff, (a >>> 11) & 0x1f, (a >>> 8) & 7, a & 0xff, acc);
  }

  private config(bus: number, slot: number, fn: number, reg: number, acc: Access): Reply {
    const size = acc.size as 1 | 2 | 4;
    const place = bus === 0 ? this.functions.get((slot << 3) | fn) : undefined;
    if (!place || reg + size > R.PCI_CONFIG_SPACE_SIZE) return deniedReply(acc);
    if (acc.dir === 'read') return { value: place.fnConfig.read(reg, size) };
    const value = Number(acc.value ?? 0) >>> 0;
    place.fnConfig.write(reg, size, value);
    if (reg >= R.PCI_BASE_ADDRESS_0 && reg < R.PCI_BASE_ADDRESS_0 + 24 && size === 4 && value !== 0xffff_ffff) {
      const index = (reg - R.PCI_BASE_ADDRESS_0) >> 2;
      const mapped = place.fnConfig.mappedBar(index);
      if (mapped !== undefined && place.fnConfig.read(reg, 4) !== mapped) {
        this.events.note?.('BAR relocation is not supported: the device stays at its mapped address', {
          bdf: bdf(slot, fn),
          device: place.owner,
          bar: index,
          written: hex(value),
          mapped: hex(mapped),
        });
      }
    }
    return { value: 0 };
  }

  /** `rep insl`/`rep outsl` on the data port: repeat the single access. */
  private stringIo(acc: Access, count: number): Reply {
    const one: Access = { space: acc.space, addr: acc.addr, size: acc.size, dir: acc.dir };
    const out = new Uint8Array(count * acc.size);
    const view = new DataView(out.buffer);
    const inView = acc.data ? new DataView(acc.data.buffer, acc.data.byteOffset, acc.data.byteLength) : null;
    if (acc.size === 8 || (acc.dir === 'write' && (!inView || acc.data!.length !== out.length))) {
      this.mistake('bad string access', acc);
      return deniedReply(acc);
    }
    for (let i = 0; i < count; i++) {
      if (acc.dir === 'write') {
        // inView is non-null here: checked above for writes.
        one.value = acc.size === 4 ? inView!.getUint32(i * 4, true) : acc.size === 2 ? inView!.getUint16(i * 2, true) : inView!.getUint8(i);
        this.ioAccess(one);
      } else {
        const v = Number(this.ioAccess(one).value);
        if (acc.size === 4) view.setUint32(i * 4, v, true);
        else if (acc.size === 2) view.setUint16(i * 2, v, true);
        else view.setUint8(i, v);
      }
    }
    return acc.dir === 'read' ? { value: 0, data: out } : { value: 0 };
  }

  private mistake(what: string, acc: Access): void {
    this.mistakes++;
    this.events.note?.(`PCI configuration access refused: ${what}`, { space: acc.space, addr: hex(acc.addr), size: acc.size });
  }
}
