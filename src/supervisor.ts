// The supervisor: builds devices and their routers from the config, places their regions
// on the buses, holds each guest's grants and PCI view, and routes every access of a
// guest (socket or in-process): PCI mechanism #1 / pcicfg -> the guest's PCI view;
// otherwise grant check -> bus lookup -> the device's router (pass-through or MUX).
// A denied access reads all-ones, drops writes, and is counted and logged.

import { type Access, type Reply, allOnes, deniedReply, describeAccess, hex } from './access.ts';
import { Bus, BusError, type BusRange, type BusSpace } from './bus.ts';
import { type ChannelSession, ChannelServer, type Endpoint, type PeerConnection } from './channel/server.ts';
import { type ClosableMemory, bufferMemory, messageMemory } from './channel/memory.ts';
import { DmaMemfds, DmaRefusal, openDmaMemfd } from './channel/dma-memory.ts';
import { type AuthRule, type AuthVerdict, GuestAuth, type GuestAuthEntry, loadAuthRule, peerRefusal } from './channel/peer-auth.ts';
import { describePeer } from './channel/peer-cred.ts';
import type { ChannelLimits } from './channel/flow.ts';
import { type HelloMsg, MAX_STRING_BYTES, ProtocolError } from './channel/messages.ts';
import { ConfigError } from './config/load.ts';
import { mapIssues } from './config/map-issues.ts';
import type { Config, DeviceConfig, GuestConfig } from './config/schema.ts';
import { type DeviceFacts, reachIssues } from './config/windows.ts';
import type { Device, DeviceDescription, DeviceEdges, DeviceMetrics } from './device.ts';
import { deviceLogEdge } from './device-log.ts';
import { loadDeviceModel } from './devices/user-model.ts';
import { DeviceRegistry } from './devices/registry.ts';
import { type DeviceReach, GuestGrants, buildGrants } from './grants.ts';
import type { DetachReason, DeviceRouter, GuestLink, GuestMemory, RouterStats } from './guest-link.ts';
import { type Logger, silentLogger } from './log.ts';
import { LogLimiter } from './log-limit.ts';
import { Counters } from './metrics.ts';
import { PassthroughRouter } from './passthrough.ts';
import { PciFunction, type PciBar } from './pci/function.ts';
import { assignSlots } from './pci/layout.ts';
import { HOST_BRIDGE } from './pci/regs.ts';
import { type PciPlacement, PciGuestView, bdf, isConf1Port } from './pci/view.ts';

/** How long an in-process guest may run its accesses before it lets the event loop turn (attachLocalGuest). */
const LOCAL_SLICE_NS = 200_000n;

export type RouterFactory = (deviceId: string, kind: string, deviceConfig: DeviceConfig) => DeviceRouter;

export interface SupervisorOptions {
  config: Config;
  logger?: Logger;
  /** Device kinds; the built-in registry when absent. */
  registry?: DeviceRegistry;
  /** Router per device: the MUX engine plugs in here. Pass-through when absent. */
  createRouter?: RouterFactory;
  /**
   * Who may connect over the socket as a config guest with neither `auth` nor `run`
   * (src/channel/peer-auth.ts): by default a peer of this process's own uid (SO_PEERCRED),
   * for programs and tests that start their peers themselves; null: nobody, as under
   * `muxvisor run`, where every guest that connects by itself must name its credential.
   */
  defaultAuth?: { uid: number | number[] } | null;
  /** The shared-memory access slot of trapped programs (src/channel/slot.ts): accept it, poll window in µs (default: the config's `slot`). */
  slot?: boolean;
  slotPollUs?: number;
  /** The config's file, named by configuration errors found when the devices are opened. */
  configSource?: string;
  /** Bounds per peer connection (src/channel/flow.ts); tests shorten the deadlines. */
  channelLimits?: Partial<ChannelLimits>;
  /** An access log (src/log/): told of every access of every guest, with its answer. */
  accessLog?: AccessObserver;
}

/** What the supervisor tells an access log: the access, its answer, when it arrived (monotonic ns). */
export interface AccessObserver {
  access(guest: string, acc: Access, reply: Reply, arrivedNs: number): void;
  /** The edges a device is built with: the log sees its DMA (through a MUX or not). */
  deviceEdges(deviceId: string, edges: DeviceEdges): DeviceEdges;
}

/** A device on the machine: what was built and where it sits. */
export interface DeviceEntry {
  id: string;
  kind: string;
  config: DeviceConfig;
  router: DeviceRouter;
  device: Device;
  description: DeviceDescription;
  ranges: (BusRange & { space: BusSpace })[];
  irq?: number;
  pci?: { slot: number; fn: number; bars: PciBar[] };
}

/** An in-process guest (scripted driver, tests): same grant and routing path as a socket guest. */
export interface LocalGuest {
  readonly name: string;
  /** IRQ lines granted to the guest. */
  readonly irqs: number[];
  access(acc: Access): Promise<Reply>;
  /** Called on every level change of a granted virtual IRQ line; returns an unsubscribe. */
  onIrq(cb: (line: number, level: boolean) => void): () => void;
  onReset(cb: (deviceId: string, reason: string) => void): () => void;
  /** Current level of a virtual IRQ line. */
  irqLevel(line: number): boolean;
  detach(reason?: DetachReason): void;
}

export interface LocalGuestOptions {
  /** DMA memory: a GuestMemory, or a buffer placed at bus address `base`. */
  memory?: GuestMemory | { base: number; bytes: Uint8Array };
}

export interface SupervisorStats {
  devices: RouterStats[];
  deviceMetrics: Record<string, DeviceMetrics>;
  guests: { guest: string; connected: boolean; accesses: number; denials: number; oversized: number; unmapped: number; faults: number; irqDropped: number; pciMistakes: number }[];
  protocolErrors: Record<string, number>;
  /** Channel counters: slotSessions, slotAccesses, slotRings, slotRefused, droppedToClosed, ... */
  channel: Record<string, number>;
  unmapped: Record<BusSpace, number>;
}

interface Transport {
  sendIrq(line: number, level: boolean): void;
  sendReset(deviceId: string, reason: string): void;
  memory: GuestMemory | null;
}

/** One attachment of a guest (a connection, or a local guest) from attach to detach. */
class Session {
  active = true;
  readonly levels = new Map<number, boolean>();
  pciMistakesBefore = 0;
  constructor(
    readonly guest: GuestEntry,
    readonly transport: Transport,
    readonly pci: PciGuestView,
    readonly link: GuestLink,
  ) {}
}

interface GuestEntry {
  name: string;
  config: GuestConfig;
  grants: GuestGrants;
  session: Session | null;
  counters: Counters;
}

/** Where BAR-only regions go when the config's `map` does not place them. */
const AUTO_BASE: Record<BusSpace, number> = { pio: 0xc000, mmio: 0xfe00_0000 };

function pow2AtLeast(n: number, min: number): number {
  let p = min;
  while (p < n) p *= 2;
  return p;
}

export class Supervisor {
  readonly log: Logger;
  readonly buses: Record<BusSpace, Bus> = { pio: new Bus('pio'), mmio: new Bus('mmio') };
  private readonly devices = new Map<string, DeviceEntry>();
  private readonly guests = new Map<string, GuestEntry>();
  private readonly registry: DeviceRegistry;
  private readonly createRouter: RouterFactory;
  private server: ChannelServer | null = null;
  private started = false;
  /** Who may be which guest over the socket (built by start()). */
  private auth: GuestAuth | null = null;
  /** The memfds held as socket guests' DMA memory: one memfd is one guest's. */
  private readonly dmaMemfds = new DmaMemfds();

  private readonly logLimit = new LogLimiter();

  /** Log level `trace`: log every access (checked once: the hot path stays a branch). */
  private readonly traceAccesses: boolean;
  private readonly accessLog?: AccessObserver;

  constructor(private readonly options: SupervisorOptions) {
    this.log = options.logger ?? silentLogger;
    this.traceAccesses = this.log.isLevelEnabled('trace');
    this.accessLog = options.accessLog;
    this.registry = options.registry ?? new DeviceRegistry();
    this.createRouter = options.createRouter ?? ((id, kind) => new PassthroughRouter(id, kind));
  }

  get config(): Config {
    return this.options.config;
  }

  /** Build devices and routers, place regions, assign PCI slots, build grants. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    try {
      for (const cfg of this.config.devices) await this.buildDevice(cfg);
      this.placeRegions();
      this.placePci();
      this.checkReach();
      const reach = new Map<string, DeviceReach>([...this.devices.values()].map((d) => [d.id, { id: d.id, ranges: d.ranges, irq: d.irq }]));
      for (const g of this.config.guests) {
        this.guests.set(g.name, { name: g.name, config: g, grants: buildGrants(g, reach), session: null, counters: new Counters() });
      }
      this.auth = await this.buildAuth();
    } catch (e) {
      await this.closeDevices();
      throw e;
    }
    for (const d of this.devices.values()) {
      this.log.info({ device: d.id, kind: d.kind, regions: d.ranges.map((r) => `${r.regionName}=${r.space}:${hex(r.start)}-${hex(r.end)}`), irq: d.irq, pci: d.pci ? bdf(d.pci.slot, d.pci.fn) : undefined }, 'device ready');
    }
  }

  /** Listen for peers (default: the config's socket; "tcp:HOST:PORT" for TCP). */
  async listen(endpoint: Endpoint = parseEndpoint(this.config.socket)): Promise<string | import('node:net').AddressInfo> {
    if (!this.started) await this.start();
    const server = new ChannelServer({ hello: (msg, conn) => this.acceptPeer(msg, conn) }, this.log, {
      slot: this.options.slot ?? this.config.slot.enabled,
      slotPollUs: this.options.slotPollUs ?? this.config.slot.pollUs,
      limits: this.options.channelLimits,
    });
    this.server = server;
    const addr = await server.listen(endpoint);
    this.log.info({ endpoint: typeof addr === 'string' ? addr : `${addr.address}:${addr.port}` }, 'listening');
    return addr;
  }

  /**
   * A one-time token for the process about to be started as `guest` (MUXVISOR_TOKEN): its
   * hello opens the guest once; revokeToken when the process has ended.
   */
  issueToken(guest: string): string {
    if (!this.auth) throw new Error('issueToken before start()');
    return this.auth.issue(guest);
  }

  /** The process started with `token` is `pid`: the token opens the guest for it and its descendants until revoked. */
  bindToken(guest: string, token: string, pid: number | undefined): void {
    if (pid !== undefined) this.auth?.bind(guest, token, pid);
  }

  revokeToken(guest: string, token: string): void {
    this.auth?.revoke(guest, token);
  }

  /** Attach an in-process guest by its config name. Throws ProtocolError unknown-guest / duplicate-guest. */
  attachLocalGuest(name: string, options: LocalGuestOptions = {}): LocalGuest {
    if (!this.started) throw new Error('attachLocalGuest before start()');
    const irqCbs = new Set<(line: number, level: boolean) => void>();
    const resetCbs = new Set<(deviceId: string, reason: string) => void>();
    const m = options.memory;
    const memory = m === undefined ? null : 'bytes' in m ? bufferMemory(m.base, m.bytes) : m;
    const session = this.openSession(name, {
      sendIrq: (line, level) => irqCbs.forEach((cb) => cb(line, level)),
      sendReset: (dev, reason) => resetCbs.forEach((cb) => cb(dev, reason)),
      memory,
    });
    this.attachRouters(session);
    let sliceStart = process.hrtime.bigint();
    return {
      name,
      irqs: [...session.guest.grants.irqs].sort((a, b) => a - b),
      access: async (acc) => {
        // An in-process guest runs on the supervisor's own event loop, and a guest behind a
        // socket (trapped, KVM helper, QEMU proxy) gets one access per turn of that loop: after
        // LOCAL_SLICE_NS of its own accesses an in-process guest lets the loop turn, so it
        // cannot starve them however tight its loop (two flooding scripted NE2000 guests left
        // a trapped driver 1 frame in 2 s).
        const now = process.hrtime.bigint();
        if (now - sliceStart > LOCAL_SLICE_NS) {
          await new Promise((resolve) => setImmediate(resolve));
          sliceStart = process.hrtime.bigint();
        }
        return session.active ? this.route(session, acc) : deniedReply(acc, `guest ${name} is detached`);
      },
      onIrq: (cb) => (irqCbs.add(cb), () => irqCbs.delete(cb)),
      onReset: (cb) => (resetCbs.add(cb), () => resetCbs.delete(cb)),
      irqLevel: (line) => session.levels.get(line) ?? false,
      detach: (reason = 'bye') => this.closeSession(session, reason),
    };
  }

  /** Route one access of a session. Exposed for the MUX tests and the bench. */
  /** Route one access; at log level `trace` every access and its answer is logged (a driver developer's register trace). */
  route(session: Session, acc: Access): Reply | Promise<Reply> {
    if (!this.traceAccesses && !this.accessLog) return this.routeAccess(session, acc);
    const arrived = this.accessLog ? Number(process.hrtime.bigint()) : 0;
    const r = this.routeAccess(session, acc);
    const logged = (rep: Reply): Reply => {
      this.accessLog?.access(session.guest.name, acc, rep, arrived);
      if (!this.traceAccesses) return rep;
      const shown = acc.dir === 'read' ? ` -> ${rep.data ? `${rep.data.length} bytes` : hex(rep.value)}` : '';
      this.log.trace({ guest: session.guest.name, space: acc.space, addr: hex(acc.addr), ...(rep.error ? { error: rep.error } : {}) }, `${describeAccess(acc)}${shown}`);
      return rep;
    };
    return r instanceof Promise ? r.then(logged) : logged(r);
  }

  private routeAccess(session: Session, acc: Access): Reply | Promise<Reply> {
    const g = session.guest;
    g.counters.inc('accesses');
    // The channel refuses such an access as malformed; an in-process guest is held to the same
    // bound here, before a reply of that size is allocated.
    if ((acc.count ?? 1) * acc.size > MAX_STRING_BYTES) return this.oversized(g, acc);
    if (acc.space === 'pcicfg') return session.pci.cfgAccess(acc);
    if (acc.space === 'pio' && isConf1Port(acc.addr)) return session.pci.ioAccess(acc);
    if (!g.grants.allows(acc)) return this.deny(g, acc);
    const bus = this.buses[acc.space];
    const hit = bus.resolve(acc);
    if (!hit) {
      g.counters.inc('unmapped');
      this.log.debug({ guest: g.name, space: acc.space, addr: hex(acc.addr) }, `granted but unmapped: ${describeAccess(acc)}`);
      return deniedReply(acc);
    }
    // The bus only holds ranges of built devices.
    const dev = this.devices.get(hit.range.deviceId)!;
    let r: Reply | Promise<Reply>;
    try {
      r = dev.router.access(g.name, hit.range.region, hit.offset, acc);
    } catch (e) {
      return this.fault(g, dev, acc, e);
    }
    if (r instanceof Promise) return r.catch((e) => this.fault(g, dev, acc, e));
    return r;
  }

  stats(): SupervisorStats {
    const protocolErrors = this.server ? this.server.protocolErrors.snapshot() : {};
    return {
      devices: [...this.devices.values()].map((d) => d.router.stats()),
      deviceMetrics: Object.fromEntries([...this.devices.values()].map((d) => [d.id, d.device.metrics()])),
      guests: [...this.guests.values()].map((g) => ({
        guest: g.name,
        connected: g.session !== null,
        accesses: g.counters.get('accesses'),
        denials: g.counters.get('denials'),
        oversized: g.counters.get('oversized'),
        unmapped: g.counters.get('unmapped'),
        faults: g.counters.get('faults'),
        irqDropped: g.counters.get('irqDropped'),
        pciMistakes: g.counters.get('pciMistakes') + (g.session?.pci.mistakes ?? 0),
      })),
      protocolErrors,
      channel: this.server ? this.server.counters.snapshot() : {},
      unmapped: { pio: this.buses.pio.unmappedCount, mmio: this.buses.mmio.unmappedCount },
    };
  }

  /** Devices as placed: ids, kinds, regions with addresses, IRQ, PCI address. */
  layout(): { id: string; kind: string; regions: { name: string; space: BusSpace; start: number; end: number }[]; irq?: number; pci?: string }[] {
    return [...this.devices.values()].map((d) => ({
      id: d.id,
      kind: d.kind,
      regions: d.ranges.map((r) => ({ name: r.regionName, space: r.space, start: r.start, end: r.end })),
      irq: d.irq,
      pci: d.pci ? bdf(d.pci.slot, d.pci.fn) : undefined,
    }));
  }

  device(id: string): DeviceEntry | undefined {
    return this.devices.get(id);
  }

  guestNames(): string[] {
    return [...this.guests.keys()];
  }

  /** Stop listening, detach every guest, close routers and devices. */
  async close(): Promise<void> {
    await this.server?.close();
    this.server = null;
    for (const g of this.guests.values()) if (g.session) this.closeSession(g.session, 'disconnect');
    await this.closeDevices();
  }

  // --- devices and layout ---

  private async buildDevice(cfg: DeviceConfig): Promise<void> {
    if (cfg.model !== undefined) {
      // A user's own model of the kind (devices[].model): registered like a built-in one.
      const { factory, info } = await loadDeviceModel(cfg.model, cfg.kind, `devices[${this.config.devices.indexOf(cfg)}].model`);
      this.registry.register(cfg.kind, factory, info);
    }
    const router = this.createRouter(cfg.id, cfg.kind, cfg);
    let device: Device;
    try {
      device = await this.registry.create({
        id: cfg.id,
        kind: cfg.kind,
        // The router's IRQ/DMA/clock (seen by the access log, if any) and the log edge for host failures.
        edges: { ...(this.accessLog ? this.accessLog.deviceEdges(cfg.id, router.edges) : router.edges), log: deviceLogEdge(this.log, cfg.id, cfg.kind) },
        backend: cfg.backend,
        properties: cfg.properties,
        config: cfg,
        logger: this.log.child({ device: cfg.id }),
      });
    } catch (e) {
      await router.close().catch(() => undefined);
      throw new Error(`device ${cfg.id} (${cfg.kind}): ${(e as Error).message}`, { cause: e });
    }
    router.bind(device);
    const description = device.describe();
    this.devices.set(cfg.id, { id: cfg.id, kind: cfg.kind, config: cfg, router, device, description, ranges: [], irq: description.irq });
  }

  /** Fixed regions first (config map, legacy bases), then BAR-only regions into free space. */
  private placeRegions(): void {
    // Map and legacy bases as configuration errors with their JSON paths (src/config/map-issues.ts).
    const placed = [...this.devices.values()].map((dev) => ({
      index: this.config.devices.findIndex((d) => d.id === dev.id),
      id: dev.id,
      kind: dev.kind,
      map: dev.config.map,
      regions: dev.description.regions,
    }));
    const issues = mapIssues(placed);
    if (issues.length > 0) throw new ConfigError(this.options.configSource ?? 'configuration', issues);
    const later: { dev: DeviceEntry; index: number }[] = [];
    for (const dev of this.devices.values()) {
      const regions = dev.description.regions;
      regions.forEach((region, index) => {
        const base = dev.config.map[region.name] ?? region.legacyBase;
        if (base === undefined) later.push({ dev, index });
        else this.mapRegion(dev, index, base);
      });
    }
    for (const { dev, index } of later) {
      const region = dev.description.regions[index];
      const align = pow2AtLeast(region.size, region.space === 'pio' ? 4 : 4096);
      this.mapRegion(dev, index, this.freeSpace(region.space, align, AUTO_BASE[region.space]));
    }
  }

  private mapRegion(dev: DeviceEntry, index: number, base: number): void {
    const region = dev.description.regions[index];
    const range = { start: base, end: base + region.size - 1, deviceId: dev.id, region: index, regionName: region.name };
    this.buses[region.space].insert(range);
    dev.ranges.push({ ...range, space: region.space });
  }

  /** The first `align`-aligned address at or after `from` with `align` free bytes. */
  private freeSpace(space: BusSpace, align: number, from: number): number {
    let at = Math.ceil(from / align) * align;
    for (;;) {
      const clash = this.buses[space].list().find((r) => r.start <= at + align - 1 && at <= r.end);
      if (!clash) return at;
      at = Math.ceil((clash.end + 1) / align) * align;
    }
  }

  private placePci(): void {
    const pciDevices = [...this.devices.values()].filter((d) => d.description.pci);
    const slots = assignSlots(pciDevices.map((d) => ({ id: d.id, pci: d.config.pci })));
    for (const dev of pciDevices) {
      const slot = slots.get(dev.id)!; // assignSlots places every device it was given
      const bars: PciBar[] = [];
      dev.ranges.forEach((r) => {
        const bar = dev.description.regions[r.region].bar;
        if (bar === undefined) return;
        if (r.end > 0xffff_ffff) throw new BusError(`device ${dev.id}: region ${r.regionName} at ${hex(r.start)} is above 4 GiB; only 32-bit BARs are supported`);
        const size = r.end - r.start + 1;
        const natural = pow2AtLeast(size, r.space === 'pio' ? 4 : 16);
        if (r.start % natural !== 0) this.log.warn({ device: dev.id, region: r.regionName, base: hex(r.start) }, `BAR ${bar} base is not aligned to its size ${hex(natural)}: sizing reads a truncated base`);
        bars.push({ index: bar, io: r.space === 'pio', base: r.start, size });
      });
      dev.pci = { slot: slot.slot, fn: slot.fn, bars };
    }
  }

  /**
   * Guests kept apart on the opened devices (src/config/windows.ts): windows within each
   * disk's real capacity and disjoint, a device without a MUX reached by one guest, range
   * grants counted as whole-device reach. Before any guest attaches; a ConfigError naming
   * the grants' JSON paths.
   */
  private checkReach(): void {
    const facts = (i: number): DeviceFacts => {
      const dev = this.devices.get(this.config.devices[i].id);
      if (!dev) return {};
      const sectors = dev.description.properties.find((p) => p.name === 'sectors')?.value;
      const known = typeof sectors === 'number' && Number.isSafeInteger(sectors);
      return {
        ...(known ? { sectors, sizeFrom: `as opened: ${dev.description.properties.find((p) => p.name === 'image')?.value ?? `device ${dev.id}`}`, disk: true } : {}),
        multiplexed: !(dev.router instanceof PassthroughRouter),
        ranges: dev.ranges,
      };
    };
    const issues = reachIssues(this.config, facts);
    if (issues.length > 0) throw new ConfigError(this.options.configSource ?? 'configuration', issues);
  }

  private async closeDevices(): Promise<void> {
    for (const d of this.devices.values()) {
      await d.router.close().catch((e) => this.log.error({ device: d.id, err: e }, 'router close failed'));
      await d.device.close?.().catch((e) => this.log.error({ device: d.id, err: e }, 'device close failed'));
    }
    this.devices.clear();
  }

  // --- guests ---

  private pciView(g: GuestEntry): PciGuestView {
    // Slot 0 stays reserved for the host bridge either way; a guest sees it only when asked for.
    const placements: PciPlacement[] = this.config.pci.hostBridge
      ? [{ slot: 0, fn: 0, owner: 'host-bridge', fnConfig: new PciFunction({ identity: HOST_BRIDGE, command: 0, irqLine: 0 }) }]
      : [];
    const mine = [...this.devices.values()].filter((d) => d.pci && d.description.pci && g.grants.hasDevice(d.id));
    for (const d of mine) {
      const { slot, fn, bars } = d.pci!; // filtered on d.pci above
      const multiFunction = fn === 0 && mine.some((o) => o !== d && o.pci!.slot === slot);
      placements.push({ slot, fn, owner: d.id, fnConfig: new PciFunction({ identity: d.description.pci!, bars, irqLine: d.irq, multiFunction }) });
    }
    return new PciGuestView(placements, {
      note: (message, fields) => this.log.info({ guest: g.name, ...fields }, message),
    });
  }

  private openSession(name: string, transport: Transport): Session {
    const g = this.guests.get(name);
    // The configured names are not listed: whoever asks for an unknown one learns nothing.
    if (!g) throw new ProtocolError('unknown-guest', `no guest "${name}" in the configuration`);
    if (g.session) throw new ProtocolError('duplicate-guest', `guest "${name}" is already attached`);
    const link: GuestLink = {
      id: g.name,
      weight: g.config.weight,
      priority: g.config.priority,
      deadlineNs: g.config.deadlineNs ?? Infinity,
      memory: transport.memory,
      setIrq: (line, level) => this.deliverIrq(session, line, level),
      notifyReset: (dev, reason) => {
        if (session.active) transport.sendReset(dev, reason);
      },
    };
    const session: Session = new Session(g, transport, this.pciView(g), link);
    g.session = session;
    return session;
  }

  private attachRouters(session: Session): void {
    for (const [id, options] of session.guest.grants.devices) this.devices.get(id)?.router.attach(session.link, options);
    this.log.info({ guest: session.guest.name, devices: [...session.guest.grants.devices.keys()] }, 'guest attached');
  }

  private closeSession(session: Session, reason: DetachReason): void {
    if (!session.active) return;
    session.active = false;
    const g = session.guest;
    g.counters.inc('pciMistakes', session.pci.mistakes);
    for (const id of g.grants.devices.keys()) {
      try {
        this.devices.get(id)?.router.detach(g.name, reason);
      } catch (e) {
        this.log.error({ guest: g.name, device: id, err: e }, 'router detach failed');
      }
    }
    if (g.session === session) g.session = null;
    const mem = session.transport.memory as ClosableMemory | null;
    void mem?.close?.().catch(() => undefined);
    this.log.info({ guest: g.name, reason }, 'guest detached');
  }

  private deliverIrq(session: Session, line: number, level: boolean): void {
    if (!session.active) return;
    const g = session.guest;
    if (!g.grants.allowsIrq(line)) {
      g.counters.inc('irqDropped');
      this.log.debug({ guest: g.name, line }, 'IRQ line not granted: dropped');
      return;
    }
    if ((session.levels.get(line) ?? false) === level) return;
    session.levels.set(line, level);
    session.transport.sendIrq(line, level);
  }

  private deny(g: GuestEntry, acc: Access): Reply {
    g.counters.inc('denials');
    // Counted always; logged at most so often per guest (a guest can deny itself at will).
    const { log, leftOut } = this.logLimit.take(`deny\0${g.name}`);
    if (log) {
      const space = acc.space as BusSpace;
      const device = this.buses[space]?.lookup(acc.addr, acc.size)?.range.deviceId;
      this.log.warn({ guest: g.name, device, space: acc.space, addr: hex(acc.addr), size: acc.size, dir: acc.dir, ...(leftOut ? { leftOut } : {}) }, `denied access: ${describeAccess(acc)}`);
    }
    return deniedReply(acc, 'denied');
  }

  /** A string access over MAX_STRING_BYTES: refused with no data (the peer reads all-ones), counted, logged. */
  private oversized(g: GuestEntry, acc: Access): Reply {
    g.counters.inc('oversized');
    const { log, leftOut } = this.logLimit.take(`oversized\0${g.name}`);
    const error = `string access of ${acc.count}x${acc.size} bytes exceeds the limit of ${MAX_STRING_BYTES} bytes per access`;
    if (log) this.log.warn({ guest: g.name, space: acc.space, addr: hex(acc.addr), ...(leftOut ? { leftOut } : {}) }, `refused access: ${error}`);
    return acc.dir === 'write' ? { value: 0, error } : { value: allOnes(acc.size), error };
  }

  private fault(g: GuestEntry, dev: DeviceEntry, acc: Access, e: unknown): Reply {
    g.counters.inc('faults');
    this.log.error({ guest: g.name, device: dev.id, space: acc.space, addr: hex(acc.addr), err: e }, `access failed: ${describeAccess(acc)}`);
    return deniedReply(acc, `device ${dev.id} failed: ${(e as Error)?.message ?? String(e)}`);
  }

  // --- socket peers ---

  /**
   * A socket peer's hello: authenticated first (peer-auth.ts; the same refusal for an unknown
   * name and one this peer may not open, nothing taken), then the name must be free, then its
   * DMA memory is taken (dma-memory.ts). No await in between: a one-time token is checked and
   * used up in one turn.
   */
  private async acceptPeer(msg: HelloMsg, conn: PeerConnection): Promise<ChannelSession> {
    const verdict = this.authenticate(msg, conn);
    const g = this.guests.get(msg.guest)!; // authenticated: a configured name
    if (g.session) throw new ProtocolError('duplicate-guest', `guest "${msg.guest}" is already attached`);
    const memory = this.peerMemory(msg, conn);
    let session: Session;
    try {
      session = this.openSession(msg.guest, {
        sendIrq: (line, level) => conn.sendIrq(line, level),
        sendReset: (dev, reason) => conn.sendReset(dev, reason),
        memory,
      });
    } catch (e) {
      await (memory as ClosableMemory | null)?.close?.();
      throw e;
    }
    this.auth!.consume(msg.guest, verdict);
    this.log.info({ conn: conn.label, guest: msg.guest, peer: describePeer(conn.credentials), by: verdict.ok ? verdict.how : '' }, 'guest authenticated');
    return {
      irqs: [...session.guest.grants.irqs].sort((a, b) => a - b),
      started: () => this.attachRouters(session),
      access: (acc) => (session.active ? this.route(session, acc) : deniedReply(acc, 'detached')),
      close: (reason) => this.closeSession(session, reason),
    };
  }

  /** The rules of peer-auth.ts for this config; token files are read here. Throws ConfigError. */
  private async buildAuth(): Promise<GuestAuth> {
    const entries = new Map<string, GuestAuthEntry>();
    const issues: { path: string; message: string }[] = [];
    for (const [i, g] of this.config.guests.entries()) {
      let auth: AuthRule | undefined;
      if (g.auth) auth = await loadAuthRule(g.auth).catch((e: Error) => (issues.push({ path: `guests[${i}].auth.tokenFile`, message: e.message }), undefined));
      entries.set(g.name, { auth, started: g.run !== undefined });
    }
    if (issues.length > 0) throw new ConfigError(this.options.configSource ?? 'configuration', issues);
    const d = this.options.defaultAuth === undefined ? { uid: process.geteuid?.() ?? 0 } : this.options.defaultAuth;
    return new GuestAuth(entries, d === null ? null : { uids: Array.isArray(d.uid) ? d.uid : [d.uid] });
  }

  /** Throws the peer's refusal (counted, the reason logged) unless it may open the guest it names. */
  private authenticate(msg: HelloMsg, conn: PeerConnection): AuthVerdict {
    const peer = conn.credentials;
    const verdict = this.auth!.check(msg.guest, msg.token, peer); // listen() follows start()
    if (verdict.ok) return verdict;
    this.server?.counters.inc('authRefused');
    // Counted always, logged at most so often: a flood of hellos must not flood the log.
    const { log, leftOut } = this.logLimit.take('auth');
    if (log) this.log.warn({ conn: conn.label, guest: msg.guest.slice(0, 64), peer: describePeer(peer), token: msg.token ? 'given' : 'none', ...(leftOut ? { leftOut } : {}) }, `hello refused: ${verdict.why}`);
    throw new ProtocolError('unknown-guest', peerRefusal(peer, msg.token));
  }

  /** The DMA memory a hello offers (PROTOCOL.md "DMA memory"); a refused offer refuses the hello (counted, logged). */
  private peerMemory(msg: HelloMsg, conn: PeerConnection): ClosableMemory | GuestMemory | null {
    const dma = msg.dma;
    try {
      if (dma?.path !== undefined) throw new ProtocolError('refused', 'hello.dma.path is not accepted: DMA memory is a sealed memfd offered by its descriptor number, hello.dma.fd (PROTOCOL.md "DMA memory")');
      if (dma?.fd !== undefined) return openDmaMemfd({ fd: dma.fd, base: dma.base, size: dma.size }, msg.guest, this.dmaMemfds, (fd) => conn.openPeerFd(fd));
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.server?.counters.inc('dmaRefused');
      const holder = e instanceof DmaRefusal ? e.holder : undefined;
      this.log.warn({ conn: conn.label, guest: msg.guest, peer: describePeer(conn.credentials), ...(holder ? { holder } : {}) }, `DMA memory refused: ${e.detail}`);
      throw e;
    }
    if (dma) return messageMemory(dma.base, dma.size, conn);
    if (msg.caps.includes('dma')) return messageMemory(0, Number.MAX_SAFE_INTEGER, conn);
    return null;
  }
}

/** "tcp:HOST:PORT" or "tcp:PORT" -> TCP; anything else is a Unix socket path. */
export function parseEndpoint(s: string): Endpoint {
  const m = /^tcp:(?:(.*):)?(\d+)$/.exec(s);
  if (m) return { host: m[1] || '127.0.0.1', port: Number(m[2]) };
  return { path: s };
}
