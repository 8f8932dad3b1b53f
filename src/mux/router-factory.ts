// Plugging the MUX into the supervisor: its RouterFactory is synchronous, module loading is
// not, so the machines and policies a config needs are loaded first, then routers are made
// on demand. A device gets a MUX when machines/<kind> exists; its policy comes from the
// device config (`policy: {name | module, options}`), round-robin by default.
//
//   new Supervisor({ config, logger, createRouter: await muxRouterFactory(config, { logger }) });
//
// or, to compose with another factory, prepareMuxRouters(config.devices) -> (id, kind, cfg) => MuxEngine | null.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Clock } from '../device.ts';
import type { DeviceRouter } from '../guest-link.ts';
import { PassthroughRouter } from '../passthrough.ts';
import type { StepperMode } from './compile.ts';
import { MuxDefinitionError, type MuxDefinition } from './define.ts';
import { createMux, type MuxEngine, type Timers } from './engine.ts';
import { loadMux, machineUrl } from './load-machine.ts';
import { loadPolicyFactory, type PolicyFactory } from './policy.ts';

/** The part of a device config this needs (src/config/schema.ts DeviceConfig). */
export interface MuxDeviceConfig {
  id: string;
  kind: string;
  policy?: { name?: string; module?: string; options?: Record<string, unknown> };
  /** `machine`: another machine (shipped name or path); `deadlineNs`: the watchdog deadline. */
  properties?: Record<string, unknown>;
}

/** Device kinds that speak another kind's protocol: QEMU's own IDE is driven by machines/ata. */
const MACHINE_OF_KIND: Record<string, string> = { 'qemu-ide': 'ata' };

/** The machine a device runs under: its `machine` property, else the one of its kind. */
export function machineFor(d: MuxDeviceConfig): string {
  const m = d.properties?.machine;
  return typeof m === 'string' ? m : (MACHINE_OF_KIND[d.kind] ?? d.kind);
}

function deadlineOf(d: MuxDeviceConfig): number | undefined {
  const v = d.properties?.deadlineNs;
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !(v > 0))
    throw new MuxDefinitionError(`device ${d.id}`, `properties.deadlineNs: expected a positive number of ns, got ${JSON.stringify(v)}`);
  return v;
}

export interface MuxRouterOptions {
  logger?: Logger;
  clock?: Clock;
  timers?: Timers;
  mode?: StepperMode;
  recheckNs?: number;
  /** Called with every MUX made (the demo and bench read its stats). */
  onEngine?: (deviceId: string, engine: MuxEngine) => void;
}

/** True when machines/<kind>.ts (or machines/<kind>/index.ts) exists. */
export function hasMachine(kind: string): boolean {
  if (!/^[a-z0-9_-]+$/i.test(kind)) return false;
  const url = machineUrl(kind);
  return url.includes('/machines/') && existsSync(fileURLToPath(url));
}

/**
 * Load what the devices need; returns a synchronous factory that makes a MUX for a device
 * with a machine, or null (the caller then uses a pass-through router). Throws
 * MuxDefinitionError / PolicyLoadError naming the device's machine or policy.
 */
export async function prepareMuxRouters(
  devices: MuxDeviceConfig[],
  opts: MuxRouterOptions = {},
): Promise<(deviceId: string, kind: string, cfg?: MuxDeviceConfig) => DeviceRouter | null> {
  const defs = new Map<string, MuxDefinition>();
  const policies = new Map<string, PolicyFactory>();
  for (const d of devices) {
    const machine = machineFor(d);
    if (typeof d.properties?.machine !== 'string' && !hasMachine(machine)) continue;
    const deadlineNs = deadlineOf(d);
    const def = await loadMux(machine);
    defs.set(d.id, deadlineNs === undefined ? def : { ...def, deadlineNs });
    const src = d.policy?.module ?? d.policy?.name ?? 'round-robin';
    if (!policies.has(src)) policies.set(src, await loadPolicyFactory(src));
  }
  return (deviceId, kind, cfg) => {
    const def = defs.get(deviceId);
    if (!def) return null;
    const conf = cfg ?? devices.find((d) => d.id === deviceId);
    const src = conf?.policy?.module ?? conf?.policy?.name ?? 'round-robin';
    const factory = policies.get(src);
    if (!factory) throw new Error(`mux for device ${deviceId}: policy ${src} was not prepared (call prepareMuxRouters with this device)`);
    const { onEngine, ...engineOpts } = opts;
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
  config: { devices: MuxDeviceConfig[] },
  opts: MuxRouterOptions = {},
): Promise<(deviceId: string, kind: string, cfg?: MuxDeviceConfig) => DeviceRouter> {
  const mux = await prepareMuxRouters(config.devices, opts);
  return (deviceId, kind, cfg) => mux(deviceId, kind, cfg) ?? new PassthroughRouter(deviceId, kind);
}
