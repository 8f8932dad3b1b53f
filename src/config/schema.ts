// The configuration file: one JSON object with devices and guests (zod 4).
// Shapes are strict so a misspelt key is an error naming its JSON path; cross-checks
// between fields (unknown device ids, duplicate names, ranges) are in `crossCheck`.

import { z } from 'zod';
import { knownFieldsAt, nearest } from './suggest.ts';
import { isShippedPolicy, unknownPolicyMessage } from '../catalog/policies.ts';
import { nicGrantIssues } from './nic-grants.ts';

const ADDRESS_HELP = 'an address: a non-negative integer or a string such as "0x1f0"';

/** A number, or a "0x1f0" / "496" string: JSON has no hex literals. */
export const Address = z
  .union([z.number().int().nonnegative(), z.string().regex(/^(0[xX][0-9a-fA-F]+|[0-9]+)$/, `expected ${ADDRESS_HELP}`)], {
    error: `expected ${ADDRESS_HELP}`,
  })
  .transform((v) => (typeof v === 'number' ? v : Number(v)))
  // Above 2^53 a number is no longer exact: "0x1ffffffffffffffff" would pass as something else.
  .refine((v) => Number.isSafeInteger(v), { error: 'expected an address below 2^53 (0x20000000000000)' })
  .meta({ description: ADDRESS_HELP });

const Path = z.string().min(1, 'expected a non-empty path');
const Options = z.record(z.string(), z.unknown());

export const BackendSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('file'), path: Path, sizeMiB: z.number().positive().optional(), readOnly: z.boolean().optional(), create: z.boolean().optional() }),
  z.strictObject({ type: z.literal('memory'), sizeMiB: z.number().positive() }),
  // Shapes owned by their backends: the backend checks its own fields.
  z.looseObject({ type: z.literal('nbd') }),
  z.looseObject({ type: z.literal('qemu') }),
  z.looseObject({ type: z.literal('tap') }),
  z.looseObject({ type: z.literal('udp') }),
  z.looseObject({ type: z.literal('switch') }),
  z.looseObject({ type: z.literal('socket') }),
  z.looseObject({ type: z.literal('pty') }),
  z.looseObject({ type: z.literal('stdio') }),
  z.looseObject({ type: z.literal('null') }),
]);

export const PolicySchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'expected a policy name such as "round-robin"').optional(),
    module: Path.optional(),
    options: Options.optional(),
  })
  .meta({ description: 'an arbitration policy: a built-in `name` (policies/<name>.ts) or a `module` path, with options' });

export const MuxSchema = z
  .strictObject({
    machine: z.string().min(1, 'expected a machine name or module path').optional().meta({
      description: 'the statechart the MUX follows: a shipped machine name ("ata", "ne2k", "uart16550") or a module path against the config file\'s folder whose default export is defineMux({...}) (muxvisor/define); default: machines/<kind>',
    }),
    deadlineNs: z.number().positive().optional().meta({ description: 'the watchdog deadline in ns: an owner that keeps the device out of a safe state longer is cut off (default: the machine\'s deadlineNs)' }),
  })
  .meta({ description: 'the MUX that shares this device: its machine and watchdog deadline (replaces the deprecated properties.machine and properties.deadlineNs)' });

export const DeviceSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'expected an id of letters, digits, "_" and "-", starting with a letter'),
  kind: z.string().min(1),
  backend: BackendSchema.optional(),
  policy: PolicySchema.optional(),
  properties: Options.default({}),
  /** Region name -> base address: overrides legacyBase, or places a BAR-only region. */
  map: z.record(z.string(), Address).default({}),
  pci: z.strictObject({ slot: z.number().int().min(1).max(31), function: z.number().int().min(0).max(7).default(0) }).optional(),
  model: Path.optional().meta({
    description: 'a device model of your own for this kind: a module (TypeScript or JavaScript, ESM or CommonJS; a path against the config file\'s folder) whose default export is a factory (ctx) => Device and whose `kindInfo` export, if any, describes the kind (muxvisor/device); it replaces a built-in model of the same kind',
  }),
  mux: MuxSchema.optional(),
});

export const RunSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('scripted'), driver: Path, options: Options.optional() }),
  z.strictObject({ type: z.literal('user'), argv: z.array(z.string()).min(1), env: z.record(z.string(), z.string()).optional(), cwd: Path.optional(), options: Options.optional() }),
  z.strictObject({ type: z.literal('kvm'), image: Path, format: z.string().optional(), memoryMiB: z.number().positive().optional(), options: Options.optional() }),
  z
    .strictObject({
      type: z.literal('qemu'),
      kernel: Path.optional().meta({ description: 'bzImage to boot (default: the guest kit, native/linux-guest/build/bzImage)' }),
      initrd: Path.optional().meta({ description: 'initramfs (default: the guest kit\'s initramfs.cpio.gz when the kernel is the kit\'s)' }),
      append: z.string().optional().meta({ description: 'kernel command line after console=ttyS0 (the kit: muxvisor.workload=disk muxvisor.guest=NAME ...)' }),
      memMiB: z.number().int().min(16).max(65536).optional().meta({ description: 'guest RAM in MiB (default 256)' }),
      accel: z.enum(['tcg', 'kvm']).optional().meta({ description: 'tcg (default; this host\'s KVM cannot run Linux, LINUX.md) or kvm on a host with VT-x/AMD-V' }),
      smp: z.number().int().min(1).max(64).optional().meta({ description: 'virtual CPUs (default 1)' }),
      device: z.string().optional().meta({ description: 'the granted device the guest\'s QEMU sees as its proxied PCI function: a disk (ata) or a shared NIC (ne2k, qemu-ne2k) (default: the guest\'s only grant of those kinds)' }),
      console: Path.optional().meta({ description: 'file for the guest\'s serial console (default: GUEST.console.log beside the socket)' }),
    })
    .meta({ description: 'an unmodified OS in its own QEMU; the shared disk or NIC is an x-pci-proxy-dev served by muxvisor (src/trap/qemu-guest/linux-guest.ts)' }),
]);

const Shared = z.boolean().optional().meta({
  description: 'this grant may overlap another guest\'s grant that says "shared" too: overlapping disk windows, or a device without a MUX reached by several guests (src/config/windows.ts); without it such overlaps are configuration errors',
});
export const DeviceGrantSchema = z.strictObject({
  device: z.string(),
  window: z.strictObject({ startLba: z.number().int().nonnegative(), sectors: z.number().int().positive() }).optional(),
  mac: z.string().optional().meta({ description: 'shared NIC (ne2k): this guest\'s own station address, e.g. "52:54:00:12:34:01"; unicast, not used by another guest of the card (default: the card\'s mac property)' }),
  promiscuous: z.boolean().optional().meta({ description: 'shared NIC (ne2k): give this guest every frame on the wire, not only those addressed to it (default false)' }),
  shared: Shared,
});
export const RangeGrantSchema = z.strictObject({ space: z.enum(['pio', 'mmio']), start: Address, end: Address, shared: Shared });
export const IrqGrantSchema = z.strictObject({ irq: z.number().int().min(0).max(255) });
export const GrantSchema = z.union([DeviceGrantSchema, RangeGrantSchema, IrqGrantSchema]);

const Uid = z.number().int().min(0).max(0xffff_fffe);
export const AuthSchema = z
  .strictObject({
    uid: z.union([Uid, z.array(Uid).min(1)]).optional().meta({
      description: 'the peer must run as this uid (or one of these), as the kernel says of the Unix socket (SO_PEERCRED); a TCP peer has no uid',
    }),
    tokenFile: Path.optional().meta({
      description: 'a file (not readable by others, not writable by group or others) whose content, trimmed, at least 16 characters, the peer sends as `token` in its hello (muxvisor exec --token-file, MUXVISOR_TOKEN)',
    }),
  })
  .meta({
    description: 'who may connect as this guest over the socket; both when both are given. Without it, a guest the config starts (`run`) is only the process started for it, and any other guest is refused by `muxvisor run`',
  });

export const GuestSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]*$/, 'expected a name of letters, digits, "_", "." and "-", starting with a letter'),
  run: RunSchema.optional(),
  auth: AuthSchema.optional(),
  grants: z.array(GrantSchema).default([]),
  weight: z.number().positive().default(1),
  priority: z.number().int().default(0),
  deadlineNs: z.number().positive().optional(),
});

export const ConfigSchema = z
  .strictObject({
    $schema: z.string().optional(),
    socket: Path.default('./muxvisor.sock'),
    pci: z
      .strictObject({
        hostBridge: z.boolean().default(false).meta({
          description: 'show an i440FX host bridge (8086:1237) at 00:00.0 in every guest\'s PCI view; off: a guest sees only the functions granted to it',
        }),
      })
      .default({ hostBridge: false }),
    slot: z
      .strictObject({
        enabled: z.boolean().default(true).meta({
          description: 'accept the shared-memory access slot that trapped programs offer (native/trap/README.md, "Fast path"); off: their accesses come as acc frames over the socket',
        }),
        pollUs: z.number().min(0).max(10000).default(100).meta({
          description: 'how long the supervisor keeps polling the slots after an access, in µs: a back-to-back access is then answered without a wake-up; costs a core for that long',
        }),
      })
      .default({ enabled: true, pollUs: 100 }),
    devices: z.array(DeviceSchema).default([]),
    guests: z.array(GuestSchema).default([]),
  })
  .meta({ title: 'muxvisor configuration', description: 'Devices, the guests that share them, and what each guest may reach.' });

export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type DeviceConfig = z.output<typeof DeviceSchema>;
export type GuestConfig = z.output<typeof GuestSchema>;
export type BackendConfig = z.output<typeof BackendSchema>;
export type PolicyConfig = z.output<typeof PolicySchema>;
export type MuxConfig = z.output<typeof MuxSchema>;
export type Grant = z.output<typeof GrantSchema>;
export type DeviceGrant = z.output<typeof DeviceGrantSchema>;
export type RangeGrant = z.output<typeof RangeGrantSchema>;
export type IrqGrant = z.output<typeof IrqGrantSchema>;
export type RunConfig = z.output<typeof RunSchema>;
export type AuthConfig = z.output<typeof AuthSchema>;

export function isDeviceGrant(g: Grant): g is DeviceGrant {
  return 'device' in g;
}
export function isRangeGrant(g: Grant): g is RangeGrant {
  return 'space' in g;
}
export function isIrqGrant(g: Grant): g is IrqGrant {
  return 'irq' in g;
}

export interface ConfigIssue {
  /** JSON path such as `guests[1].grants[0]`; empty for the root. */
  path: string;
  message: string;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

type Issue = z.core.$ZodIssue;

/** `unknown field "grnats" (did you mean "grants"?)`: the suggestion is the nearest field `schema` knows there. */
function unknownFieldsMessage(keys: readonly string[], known: readonly string[]): string {
  const fields = keys.map((k) => {
    const near = nearest(k, known.filter((f) => !keys.includes(f)));
    return near ? `"${k}" (did you mean "${near}"?)` : `"${k}"`;
  });
  return `unknown field${keys.length > 1 ? 's' : ''} ${fields.join(', ')}`;
}

/**
 * Flatten zod issues; for a union, report the branch that came closest (fewest issues).
 * `prefix`: the JSON path of what was parsed; `schema`: its schema, for "did you mean" on an
 * unknown field (`rel`: the path below `schema`, kept through unions).
 */
export function flattenIssues(issues: readonly Issue[], prefix: readonly PropertyKey[] = [], schema?: z.ZodType, rel: readonly PropertyKey[] = []): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    const below = [...rel, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const best = [...issue.errors].sort((a, b) => a.length - b.length)[0];
      out.push(...flattenIssues(best, path, schema, below));
      continue;
    }
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = unknownFieldsMessage(issue.keys, schema ? knownFieldsAt(schema, below) : []);
    out.push({ path: formatPath(path), message });
  }
  return out;
}

const hex = (n: number) => '0x' + n.toString(16);

/** Checks across fields, after the shapes are valid. `knownKinds`: device kinds that exist (unchecked when absent). */
export function crossCheck(config: Config, knownKinds?: readonly string[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const ids = new Map<string, number>();
  const pciSlots = new Map<string, string>();
  config.devices.forEach((d, i) => {
    const at = `devices[${i}]`;
    if (ids.has(d.id)) issues.push({ path: `${at}.id`, message: `duplicate device id "${d.id}" (also devices[${ids.get(d.id)}])` });
    else ids.set(d.id, i);
    // A device with its own `model` brings its kind with it.
    if (knownKinds && d.model === undefined && !knownKinds.includes(d.kind)) {
      issues.push({ path: `${at}.kind`, message: `unknown device kind "${d.kind}"; known kinds: ${knownKinds.join(', ')}` });
    }
    for (const k of ['machine', 'deadlineNs'] as const) {
      if (d.mux?.[k] !== undefined && d.properties[k] !== undefined)
        issues.push({ path: `${at}.properties.${k}`, message: `give it once, as mux.${k} (properties.${k} is the deprecated spelling)` });
    }
    if (d.policy && (d.policy.name === undefined) === (d.policy.module === undefined)) {
      issues.push({ path: `${at}.policy`, message: 'expected exactly one of "name" or "module"' });
    } else if (d.policy?.name !== undefined && !isShippedPolicy(d.policy.name)) {
      issues.push({ path: `${at}.policy.name`, message: unknownPolicyMessage(d.policy.name) });
    }
    if (d.pci) {
      const key = `${d.pci.slot}.${d.pci.function}`;
      const other = pciSlots.get(key);
      if (other) issues.push({ path: `${at}.pci`, message: `PCI slot ${d.pci.slot} function ${d.pci.function} is already used by "${other}"` });
      else pciSlots.set(key, d.id);
    }
  });
  const names = new Map<string, number>();
  config.guests.forEach((g, i) => {
    const at = `guests[${i}]`;
    if (names.has(g.name)) issues.push({ path: `${at}.name`, message: `duplicate guest name "${g.name}" (also guests[${names.get(g.name)}])` });
    else names.set(g.name, i);
    if (g.auth && g.auth.uid === undefined && g.auth.tokenFile === undefined) issues.push({ path: `${at}.auth`, message: 'expected "uid", "tokenFile" or both' });
    g.grants.forEach((gr, j) => {
      const gat = `${at}.grants[${j}]`;
      if (isDeviceGrant(gr) && !ids.has(gr.device)) {
        const known = [...ids.keys()];
        issues.push({ path: `${gat}.device`, message: `unknown device "${gr.device}"; devices: ${known.length ? known.join(', ') : '(none)'}` });
      }
      if (isRangeGrant(gr)) {
        if (gr.end < gr.start) issues.push({ path: gat, message: `end ${hex(gr.end)} is before start ${hex(gr.start)}` });
        if (gr.space === 'pio' && gr.end > 0xffff) issues.push({ path: `${gat}.end`, message: `port ${hex(gr.end)} is beyond 0xffff` });
      }
    });
  });
  issues.push(...nicGrantIssues(config));
  return issues;
}
