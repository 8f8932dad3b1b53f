// Registry glue for kind `ne2k`: properties { mac }, and the wire behind the card. Backends
// that carry frames (tap, udp, switch) register an opener with registerWireOpener(); without a
// backend the card transmits into nothing and receives nothing.

import { z } from 'zod';
import type { Device, DeviceEdges } from '../../device.ts';
import { parseMac } from './memory.ts';
import { Ne2kDevice } from './ne2k-device.ts';
import { DEFAULT_MAC } from './regs.ts';
import { NullWire, type NicWire } from './wire.ts';

export const Ne2kPropertiesSchema = z.strictObject({
  mac: z
    .string()
    .refine((s) => parseMac(s) !== null, 'expected a MAC address such as "52:54:00:12:34:56"')
    .refine((s) => (parseMac(s)?.[0] ?? 0) % 2 === 0, 'a card\'s own MAC must be unicast (first byte even)')
    .optional()
    .meta({ description: `station address in the card's PROM (default ${DEFAULT_MAC})` }),
  irq: z.number().int().min(0).max(15).optional().meta({ description: 'ISA IRQ the description proposes (default 11)' }),
  // Read by the MUX, not by the model.
  machine: z.string().optional(),
  capture: z.string().min(1).optional().meta({ description: 'shared card: a folder for pcap files, wire.pcap (frames on the wire) and GUEST.pcap (what each guest sent and received)' }),
  deadlineNs: z.number().positive().optional(),
});

/** Opens the wire for a backend config `{ type, ... }`; the id names the device in errors. */
export type WireOpener = (backend: Record<string, unknown>, id: string) => NicWire | Promise<NicWire>;

const WIRE_OPENERS = new Map<string, WireOpener>();

/** A network backend module registers itself here (tap, udp, switch, ...). */
export function registerWireOpener(type: string, opener: WireOpener): void {
  WIRE_OPENERS.set(type, opener);
}

/** Register unless the type has an opener already (built-in backends yield to a plug-in's). */
export function registerWireOpenerIfAbsent(type: string, opener: WireOpener): void {
  if (!WIRE_OPENERS.has(type)) WIRE_OPENERS.set(type, opener);
}

export async function openWire(backend: unknown, id: string): Promise<NicWire> {
  if (backend === undefined) return new NullWire();
  const type = (backend as { type?: unknown } | null)?.type;
  const opener = typeof type === 'string' ? WIRE_OPENERS.get(type) : undefined;
  if (!opener) {
    const known = [...WIRE_OPENERS.keys()].sort();
    throw new Error(`device ${id}: backend.type "${String(type)}" carries no frames for ne2k; known: ${known.length ? known.join(', ') : '(none registered yet)'}, or no backend`);
  }
  return opener(backend as Record<string, unknown>, id);
}

/** DeviceFactory for kind `ne2k`. */
export async function createNe2k(ctx: { id?: string; edges: DeviceEdges; backend?: unknown; properties: Record<string, unknown> }): Promise<Device> {
  const id = ctx.id ?? 'ne2k';
  const props = Ne2kPropertiesSchema.safeParse(ctx.properties ?? {});
  if (!props.success) throw new Error(`device ${id}: bad properties: ${props.error.issues.map((i) => `properties.${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const wire = await openWire(ctx.backend, id);
  const log = ctx.edges.log;
  if (log) wire.onError?.((what, err) => log.hostError(`backend: ${what}`, err));
  const mac = props.data.mac === undefined ? undefined : parseMac(props.data.mac)!; // checked by the schema
  return new Ne2kDevice(ctx.edges, wire, { mac, irq: props.data.irq });
}
