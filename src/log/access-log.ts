// The access log (`--access-log FILE`): the supervisor tells it every access of every guest
// with its answer (AccessObserver), each MUX tells it the chart around the owner's accesses
// and its events (MuxRecorder); it names registers from the device's machine and hands
// records to the buffered writer. A guest's own stdout/stderr never comes here.
//
//   const log = new AccessLog(path);
//   const sup = new Supervisor({ ..., accessLog: log, createRouter: await muxRouterFactory(config, { recorder: log }) });
//   await sup.start(); await log.start(sup);   // header: devices, regions, windows
//   ...                                        // guests run
//   await log.close();                         // after the guests, before or after sup.close()

import { readFileSync } from 'node:fs';
import type { Access, Reply } from '../access.ts';
import type { DeviceEdges } from '../device.ts';
import { isConf1Port } from '../pci/view.ts';
import { loadMux } from '../mux/load-machine.ts';
import { resolveRegisters, type RegisterMap } from '../mux/registers.ts';
import { hasMachine, machineFor } from '../mux/router-factory.ts';
import type { MuxRan, MuxRecordEvent, MuxRecorder } from '../mux/recorder.ts';
import type { AccessObserver, Supervisor } from '../supervisor.ts';
import { digest } from './digest.ts';
import { LOG_VERSION, type AccessRecord, type EventRecord, type HeaderRecord, type LogValue } from './record.ts';
import { LogWriter } from './writer.ts';

/** The ATA command register (its Linux name), and the commands whose data-in describes the device: IDENTIFY, IDENTIFY PACKET. */
const COMMAND_REGISTER = 'ATA_REG_CMD';
const DESCRIBING_COMMANDS = new Set([0xec, 0xa1]);

/** Linux's name from a register's help ("ATA_REG_CMD: command opcode"), else the map's name. */
export function registerLabel(name: string, help?: string): string {
  const m = /^([A-Z][A-Z0-9]*_[A-Z0-9_]+):/.exec(help ?? '');
  return m ? m[1] : name;
}

function logValue(v: number | bigint): LogValue {
  if (typeof v === 'number') return v;
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : `0x${v.toString(16)}`;
}

function toolVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `muxvisor ${pkg.version}`;
}

interface Named {
  map: RegisterMap;
  labels: Map<string, string>;
}

export class AccessLog implements AccessObserver, MuxRecorder {
  private readonly writer: LogWriter;
  private readonly t0 = Number(process.hrtime.bigint());
  /** The MUX's half of an access, until the supervisor's half (the answer) arrives. */
  private readonly ranBy = new WeakMap<Access, MuxRan>();
  private readonly named = new Map<string, Named>();
  /** Per device: the guest that accessed it last (DMA goes there), the chart state last seen. */
  private readonly lastGuest = new Map<string, string>();
  /** Per device: the last command written to its command register. */
  private readonly command = new Map<string, number>();
  private readonly state = new Map<string, { state: string; safe?: boolean }>();
  private sup: Supervisor | null = null;
  private accesses = 0;
  private events = 0;

  constructor(readonly path: string) {
    this.writer = new LogWriter(path);
  }

  /** Write the header (devices, regions, windows) and load the register maps. Call after sup.start(), before any guest runs. */
  async start(sup: Supervisor): Promise<void> {
    this.sup = sup;
    const devices: HeaderRecord['devices'] = [];
    for (const d of sup.layout()) {
      const entry = sup.device(d.id)!;
      const machine = hasMachine(machineFor(entry.config)) ? machineFor(entry.config) : null;
      if (machine) {
        const map = resolveRegisters(await loadMux(machine), entry.description.regions.map((r) => r.name));
        this.named.set(d.id, { map, labels: new Map(map.all.map((r) => [r.name, registerLabel(r.name, r.help)])) });
      }
      devices.push({
        id: d.id,
        kind: d.kind,
        machine,
        regions: d.regions,
        ...(d.irq !== undefined ? { irq: d.irq } : {}),
        properties: Object.fromEntries(entry.description.properties.map((p) => [p.name, p.value])),
      });
    }
    const guests = sup.config.guests.map((g) => ({
      name: g.name,
      windows: Object.fromEntries(g.grants.flatMap((gr) => ('device' in gr && gr.window ? [[gr.device, gr.window]] : []))),
    }));
    this.writer.write({ type: 'header', version: LOG_VERSION, tool: toolVersion(), started: new Date().toISOString(), devices, guests });
  }

  private now(): number {
    return Number(process.hrtime.bigint()) - this.t0;
  }

  // ---- MuxRecorder ----

  ran(acc: Access, info: MuxRan): void {
    this.ranBy.set(acc, info);
  }

  event(device: string, e: MuxRecordEvent): void {
    this.events++;
    const rec: EventRecord = { type: 'event', t: e.t - this.t0, device, kind: e.kind, state: e.state, safe: e.safe };
    if (e.guest !== undefined) rec.guest = e.guest;
    if (e.detail !== undefined) rec.detail = e.detail;
    if (e.ns !== undefined) rec.ns = e.ns;
    this.state.set(device, { state: e.state, safe: e.safe });
    this.writer.write(rec);
  }

  /**
   * The device's IRQ line and DMA, recorded on their way to the guests: through a MUX they
   * reach the owner, through a pass-through router the guest that accessed the device last;
   * either way the last guest this log saw access the device. What the device read from guest
   * memory goes in full (a replay answers DMA with it), what it wrote as length and CRC.
   */
  deviceEdges(device: string, edges: DeviceEdges): DeviceEdges {
    const record = (rec: EventRecord): void => {
      this.events++;
      const guest = this.lastGuest.get(device);
      if (guest !== undefined) rec.guest = guest;
      const s = this.state.get(device);
      if (s) Object.assign(rec, s);
      this.writer.write(rec);
    };
    const dma = (dir: 'read' | 'write', addr: number, data: Uint8Array): void =>
      record({ type: 'event', t: this.now(), device, kind: 'dma', dma: { dir, addr, ...digest(data, dir === 'read') } });
    let level = false; // devices may set the same level again: only edges are events
    return {
      ...edges,
      irq: {
        set: (l) => {
          if (l !== level) record({ type: 'event', t: this.now(), device, kind: 'irq', level: l });
          level = l;
          edges.irq.set(l);
        },
      },
      dma: {
        read: async (addr, len) => {
          const r = await edges.dma.read(addr, len);
          if (r) dma('read', addr, r);
          return r;
        },
        write: async (addr, data) => {
          const ok = await edges.dma.write(addr, data);
          if (ok) dma('write', addr, data);
          return ok;
        },
      },
    };
  }

  // ---- AccessObserver ----

  access(guest: string, acc: Access, reply: Reply, arrivedNs: number): void {
    this.accesses++;
    const end = Number(process.hrtime.bigint());
    const where = this.locate(acc);
    const count = acc.count ?? 1;
    const rec: AccessRecord = {
      type: 'access',
      t: arrivedNs - this.t0,
      guest,
      device: where.device,
      space: acc.space === 'pcicfg' ? 'config' : acc.space,
      addr: acc.addr,
      reg: where.reg,
      dir: acc.dir === 'read' ? 'r' : 'w',
      size: acc.size,
      count,
      stallNs: 0,
      ns: end - arrivedNs,
    };
    if (acc.dir === 'write') {
      if (acc.data && count > 1) rec.data = digest(acc.data, true);
      else {
        rec.value = logValue(acc.value ?? 0);
        if (where.reg === COMMAND_REGISTER && where.device !== null) this.command.set(where.device, Number(acc.value));
      }
    } else if (reply.data) {
      // Data read: length and CRC; in full where a replay compares word by word and normalises
      // (a description of the device, IDENTIFY). Keeping every sector read cost 30% of the
      // disk demo's throughput (bench log.overhead).
      const describes = where.device !== null && DESCRIBING_COMMANDS.has(this.command.get(where.device) ?? -1);
      rec.answerData = digest(reply.data, describes);
    } else rec.answer = logValue(reply.value);
    if (reply.error) rec.error = reply.error;
    if (where.device !== null) this.lastGuest.set(where.device, guest);
    const mux = this.ranBy.get(acc);
    if (mux) {
      this.ranBy.delete(acc);
      this.state.set(mux.device, { state: mux.after });
      rec.before = mux.before;
      rec.after = mux.after;
      rec.owner = mux.owner;
      if (mux.held) rec.stallNs = Math.max(0, mux.startNs - arrivedNs);
    }
    this.writer.write(rec);
  }

  /** Device and register of an access (as the supervisor routes it: PCI mechanism #1 first). */
  private locate(acc: Access): { device: string | null; reg: string | null } {
    if (acc.space === 'pcicfg') return { device: 'pci', reg: null };
    if (acc.space === 'pio' && isConf1Port(acc.addr)) return { device: 'pci', reg: acc.addr < 0xcfc ? 'PCI_CONFIG_ADDRESS' : 'PCI_CONFIG_DATA' };
    const hit = this.sup?.buses[acc.space].lookup(acc.addr, acc.size);
    if (!hit) return { device: null, reg: null };
    const named = this.named.get(hit.range.deviceId);
    const reg = named?.map.at(hit.range.region, hit.offset, acc.dir);
    return { device: hit.range.deviceId, reg: reg ? named!.labels.get(reg.name)! : null };
  }

  /** Write the end record and everything buffered; close the file. */
  async close(): Promise<void> {
    this.writer.write({ type: 'end', t: this.now(), accesses: this.accesses, events: this.events, blocked: this.writer.blocked });
    await this.writer.close();
  }
}
