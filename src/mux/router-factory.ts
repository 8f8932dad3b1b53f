// Plugging the MUX into the supervisor: its RouterFactory is synchronous, module loading is
// not, so the machines and policies a config needs are loaded first, then routers are made
// on demand. A device gets a MUX when machines/<kind> exists; its policy comes from the
// device config (`policy: {name | module, options}`), round-robin by default.
//
//   new Supervisor({ config, logger, createRouter: await muxRouterFactory(config, { logger }) });
//
// or, to compose with another factory, prepareMuxRouters(config.devices) -> (id, kind, cfg) => MuxEngine | null.
//
// A mistake in a device's policy or machine is a MuxConfigError whose issues name the JSON
// path in `devices` (`devices[0].policy.name: ...`); `muxvisor run` reports them with the file.

import type { Logger } from 'pino';
import type { ConfigIssue } from '../config/schema.ts';
import type { Clock } from '../device.ts';
import type { DeviceRouter } from '../guest-link.ts';
import { PassthroughRouter } from '../passthrough.ts';
import type { StepperMode } from './compile.ts';
import type { MuxDefinition } from './define.ts';
import { createMux, type MuxEngine, type Timers } from './engine.ts';
import type { MuxRecorder } from './recorder.ts';
import { shippedMachineUrl } from '../catalog/machines.ts';
import { isShippedPolicy, unknownPolicyMessage } from '../catalog/policies.ts';
import { loadMux } from './load-machine.ts';
import { loadPolicyFactory, type PolicyFactory } from './policy.ts';
import { NicShareRouter } from './nic/nic-router.ts';
import { NIC_KINDS } from '../config/nic-grants.ts';
import { parseMac } from '../devices/ne2k/memory.ts';

/** The part of a device config this needs (src/config/schema.ts DeviceConfig). */
export interface MuxDeviceConfig {
  id: string;
  kind: string;
  policy?: { name?: string; module?: string; options?: Record<string, unknown> };
  /** `machine`: another machine (shipped name or path); `deadlineNs`: the watchdog deadline. */
  mux?: { machine?: string; deadlineNs?: number };
  /** Deprecated spellings of `mux.machine` and `mux.deadlineNs` (still read, with a warning). */
  properties?: Record<string, unknown>;
}

/** The machine the config names for a device (`mux.machine`, else the deprecated `properties.machine`), and its JSON path. */
function namedMachine(d: MuxDeviceConfig): { machine: unknown; path: string } | null {
  if (d.mux?.machine !== undefined) return { machine: d.mux.machine, path: 'mux.machine' };
  if (d.properties?.machine !== undefined) return { machine: d.properties.machine, path: 'properties.machine' };
  return null;
}

/** The watchdog deadline the config gives a device, and its JSON path. */
function namedDeadline(d: MuxDeviceConfig): { value: unknown; path: string } | null {
  if (d.mux?.deadlineNs !== undefined) return { value: d.mux.deadlineNs, path: 'mux.deadlineNs' };
  if (d.properties?.deadlineNs !== undefined) return { value: d.properties.deadlineNs, path: 'properties.deadlineNs' };
  return null;
}

/** Device kinds that speak another kind's protocol: QEMU's own IDE is driven by machines/ata. */
const MACHINE_OF_KIND: Record<string, string> = { 'qemu-ide': 'ata' };

/** The machine a device runs under: its `machine` property, else the one of its kind. */
export function machineFor(d: MuxDeviceConfig): string {
  const m = namedMachine(d)?.machine;
  return typeof m === 'string' ? m : (MACHINE_OF_KIND[d.kind] ?? d.kind);
}

/** Devices' MUX settings that are wrong, each with its JSON path (`devices[0].policy.name`). */
export class MuxConfigError extends Error {
  constructor(
    readonly issues: ConfigIssue[],
    options?: ErrorOptions,
  ) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join('\n'), options);
    this.name = 'MuxConfigError';
  }
}

/** The index of a device in the config, for its JSON path. */
const at = (i: number) => `devices[${i}]`;

/**
 * A shared NIC (kind ne2k or qemu-ne2k without a `machine` property) gets a NicShareRouter:
 * a virtual card per guest, no ownership to switch (src/mux/nic/README.md).
 */
export function usesNicRouter(d: MuxDeviceConfig): boolean {
  return NIC_KINDS.has(d.kind) && typeof namedMachine(d)?.machine !== 'string';
}

/** Whether a device runs under a MUX: a `machine` property, or a machine for its kind. */
function hasMux(d: MuxDeviceConfig): boolean {
  if (usesNicRouter(d)) return false;
  return typeof namedMachine(d)?.machine === 'string' || hasMachine(machineFor(d));
}

/** What is wrong with a device's MUX settings before anything is loaded. */
function deviceIssues(d: MuxDeviceConfig, i: number): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const mux = hasMux(d);
  if (d.policy && !mux)
    issues.push({ path: `${at(i)}.policy`, message: `device kind "${d.kind}" has no MUX (no machines/${d.kind}), so nothing arbitrates it: remove the policy, or give a machine in mux.machine` });
  const name = d.policy?.name;
  if (mux && d.policy?.module === undefined && name !== undefined && !isShippedPolicy(name))
    issues.push({ path: `${at(i)}.policy.name`, message: unknownPolicyMessage(name) });
  const m = namedMachine(d);
  if (m && (typeof m.machine !== 'string' || m.machine === ''))
    issues.push({ path: `${at(i)}.${m.path}`, message: `expected a machine name or module path, got ${JSON.stringify(m.machine)}` });
  const v = namedDeadline(d);
  if (mux && v && (typeof v.value !== 'number' || !(v.value > 0)))
    issues.push({ path: `${at(i)}.${v.path}`, message: `expected a positive number of ns, got ${JSON.stringify(v.value)}` });
  return issues;
}

/** The policy a device uses: its module path, its shipped name, or round-robin. */
const policySource = (d: MuxDeviceConfig | undefined) => d?.policy?.module ?? d?.policy?.name ?? 'round-robin';

export interface MuxRouterOptions {
  logger?: Logger;
  clock?: Clock;
  timers?: Timers;
  mode?: StepperMode;
  recheckNs?: number;
  /** An access log's engine half (src/log/): every MUX made reports to it. */
  recorder?: MuxRecorder;
  /** Called with every MUX made (the demo and bench read its stats). */
  onEngine?: (deviceId: string, engine: MuxEngine) => void;
  /** Called with every shared-NIC router made (demo, capture, tests). */
  onNicRouter?: (deviceId: string, router: NicShareRouter) => void;
  /** Devices granted to a guest behind QEMU's proxy (muxRouterFactory finds them): see PROXIED_DEADLINE_NS. */
  proxiedDevices?: ReadonlySet<string>;
}

/**
 * The watchdog deadline of a device granted to a guest in its own QEMU (`run.type` "qemu"),
 * unless the config names one: every access of such a guest is a message round trip, and its
 * vCPU may wait for a core on a loaded host (TCG), so one IDENTIFY in PIO took over 2 s here
 * (the machines' default) and the guest lost its disk. A stalled guest is still cut off.
 */
export const PROXIED_DEADLINE_NS = 30_000_000_000;

/** True when machines/<kind>.ts (or machines/<kind>/index.ts) exists. */
export function hasMachine(kind: string): boolean {
  return shippedMachineUrl(kind) !== null;
}

/**
 * Load what the devices need; returns a synchronous factory that makes a MUX for a device
 * with a machine, or null (the caller then uses a pass-through router). Throws
 * MuxConfigError naming the JSON path of each bad policy, machine or deadline (the
 * MuxDefinitionError / PolicyLoadError of a module that cannot be loaded is its cause).
 */
export async function prepareMuxRouters(
  devices: MuxDeviceConfig[],
  opts: MuxRouterOptions = {},
): Promise<(deviceId: string, kind: string, cfg?: MuxDeviceConfig) => DeviceRouter | null> {
  const issues = devices.flatMap(deviceIssues);
  if (issues.length > 0) throw new MuxConfigError(issues);
  const defs = new Map<string, MuxDefinition>();
  const policies = new Map<string, PolicyFactory>();
  for (const [i, d] of devices.entries()) {
    if (!hasMux(d)) continue;
    const machine = machineFor(d);
    const deadlineNs = namedDeadline(d)?.value as number | undefined; // checked in deviceIssues
    for (const named of [namedMachine(d), namedDeadline(d)]) {
      if (named?.path.startsWith('properties.'))
        opts.logger?.warn({ device: d.id }, `${at(i)}.${named.path} is deprecated: write it as ${at(i)}.mux.${named.path.slice('properties.'.length)}`);
    }
    let def: MuxDefinition;
    try {
      def = await loadMux(machine);
    } catch (e) {
      const named = namedMachine(d);
      const path = named ? `${at(i)}.${named.path}` : `${at(i)}.kind`;
      throw new MuxConfigError([{ path, message: (e as Error).message }], { cause: e });
    }
    if (deadlineNs === undefined && opts.proxiedDevices?.has(d.id) && def.deadlineNs < PROXIED_DEADLINE_NS) {
      opts.logger?.info({ device: d.id, deadlineNs: PROXIED_DEADLINE_NS }, `${at(i)}: a guest behind QEMU's proxy shares it: watchdog deadline ${PROXIED_DEADLINE_NS / 1e9} s (set ${at(i)}.mux.deadlineNs to choose)`);
      defs.set(d.id, { ...def, deadlineNs: PROXIED_DEADLINE_NS });
    } else defs.set(d.id, deadlineNs === undefined ? def : { ...def, deadlineNs });
    const src = policySource(d);
    if (!policies.has(src)) {
      try {
        policies.set(src, await loadPolicyFactory(src));
      } catch (e) {
        const path = d.policy?.module !== undefined ? `${at(i)}.policy.module` : d.policy?.name !== undefined ? `${at(i)}.policy.name` : `${at(i)}.policy`;
        throw new MuxConfigError([{ path, message: (e as Error).message }], { cause: e });
      }
    }
    // Create it once now, so bad options are a config error here, not when the device starts.
    try {
      policies.get(src)!(d.policy?.options);
    } catch (e) {
      throw new MuxConfigError([{ path: `${at(i)}.policy.options`, message: (e as Error).message }], { cause: e });
    }
  }
  return (deviceId, kind, cfg) => {
    const conf = cfg ?? devices.find((d) => d.id === deviceId);
    if (usesNicRouter(conf ?? { id: deviceId, kind })) {
      const mac = conf?.properties?.mac;
      const capture = conf?.properties?.capture;
      const router = new NicShareRouter(deviceId, kind, {
        capture: typeof capture === 'string' ? capture : undefined,
        clock: opts.clock,
        defaultMac: typeof mac === 'string' ? (parseMac(mac) ?? undefined) : undefined,
        onError: (e) => opts.logger?.error({ device: deviceId, err: e }, e.message),
      });
      opts.onNicRouter?.(deviceId, router);
      return router;
    }
    const def = defs.get(deviceId);
    if (!def) return null;
    const src = policySource(conf);
    const factory = policies.get(src);
    if (!factory) throw new Error(`mux for device ${deviceId}: policy ${src} was not prepared (call prepareMuxRouters with this device)`);
    const { onEngine, onNicRouter: _nic, ...engineOpts } = opts;
    const engine = createMux(def, { deviceId, policy: factory(conf?.policy?.options), ...engineOpts });
    onEngine?.(deviceId, engine);
    return engine;
  };
}

/**
 * The supervisor's RouterFactory for a config: a MUX for each device whose kind has a
 * machine, a pass-through router for the others.
 *
 *   new Supervisor({ config, logger, createRouter: await muxRouterFactory(config, { logger }) })
 */
export async function muxRouterFactory(
  config: { devices: MuxDeviceConfig[]; guests?: readonly { run?: { type: string }; grants?: readonly unknown[] }[] },
  opts: MuxRouterOptions = {},
): Promise<(deviceId: string, kind: string, cfg?: MuxDeviceConfig) => DeviceRouter> {
  const proxied = new Set<string>();
  for (const g of config.guests ?? []) {
    if (g.run?.type !== 'qemu') continue;
    for (const gr of g.grants ?? []) if (gr && typeof gr === 'object' && typeof (gr as { device?: unknown }).device === 'string') proxied.add((gr as { device: string }).device);
  }
  const mux = await prepareMuxRouters(config.devices, { ...opts, proxiedDevices: opts.proxiedDevices ?? proxied });
  return (deviceId, kind, cfg) => mux(deviceId, kind, cfg) ?? new PassthroughRouter(deviceId, kind);
}
