// What keeps guests apart on a device they both reach (DESIGN.md "Isolation"), checked on
// the configuration, so that a config in which guests would overwrite each other does not load:
//
//  - on a disk, each guest's LBA window (the whole disk without one) must not overlap another
//    guest's, unless both grants say `"shared": true`; a window must end within the disk;
//  - a device without a MUX (pass-through router) is driven by each guest directly, with no
//    safe-state switching: at most one guest may reach it, unless all its grants are shared;
//    and a window there would not be applied (only the MUX translates LBAs), so it is refused;
//  - a guest reaches a device once: two device grants of one device are ambiguous;
//  - two devices do not share one image (file, QEMU image, NBD export) unless both are
//    read-only: each device's guests would overwrite the other's, whatever the windows say.
//
// A guest reaches a device through a device grant, or through a raw range grant that touches
// one of the device's regions (the same rule as src/grants.ts buildGrants): such a guest sees
// the whole device. Facts about devices are known in steps: the kind and a memory size when
// the config is parsed, image sizes when it is loaded, capacities, routers and placed regions
// when the supervisor opens the devices (before any guest attaches); each step checks what it
// knows, and an issue names the JSON paths of both grants.

import { stat } from 'node:fs/promises';
import { normalize } from 'node:path';
import type { BusSpace } from '../bus.ts';
import { type Config, type ConfigIssue, isDeviceGrant, isRangeGrant } from './schema.ts';

/** Device kinds that are disks: a guest sees an LBA window of one (the whole disk without a window). */
export const DISK_KINDS: ReadonlySet<string> = new Set(['ata', 'qemu-ide']);

export const SECTORS_PER_MIB = 2048;

/** What is known of one device (by its index in `config.devices`) at a given step. */
export interface DeviceFacts {
  /** Capacity in 512-byte sectors, when known. */
  sectors?: number;
  /** Where the capacity comes from, for messages (`backend.sizeMiB 1`, `image /x.img`). */
  sizeFrom?: string;
  /** A disk: guests' windows must not overlap. Default: its kind is in DISK_KINDS, or a grant gives it a window. */
  disk?: boolean;
  /** False: a pass-through router (each guest drives it directly); true: a MUX; unknown when absent. */
  multiplexed?: boolean;
  /** Its placed regions: range grants touching them reach the device. Unknown (not checked) when absent. */
  ranges?: readonly { space: BusSpace; start: number; end: number }[];
  /** What names its storage (an image's path or inode, an NBD export), and where in the config. */
  storage?: { key: string; path: string; readOnly: boolean };
}

interface Reach {
  guest: number;
  /** JSON path of the grant, `.window` appended when it has one. */
  path: string;
  window?: { startLba: number; sectors: number };
  shared: boolean;
}

function mib(sectors: number): string {
  const m = sectors / SECTORS_PER_MIB;
  return Number.isInteger(m) ? `${m} MiB` : `${m.toFixed(3)} MiB`;
}

/** Every guest's reach of each device (device index -> reaches, one per guest at most). */
function reaches(config: Config, facts: (i: number) => DeviceFacts, issues: ConfigIssue[]): Map<number, Reach[]> {
  const byId = new Map(config.devices.map((d, i) => [d.id, i]));
  const out = new Map<number, Reach[]>();
  const add = (dev: number, r: Reach) => (out.get(dev) ?? out.set(dev, []).get(dev)!).push(r);
  config.guests.forEach((g, gi) => {
    const mine = new Map<number, string>(); // device -> path of the grant that reaches it
    g.grants.forEach((gr, j) => {
      if (!isDeviceGrant(gr)) return;
      const dev = byId.get(gr.device);
      if (dev === undefined) return; // an unknown device: crossCheck reports it
      const path = `guests[${gi}].grants[${j}]`;
      const other = mine.get(dev);
      if (other !== undefined) {
        issues.push({ path, message: `device "${gr.device}" is granted to this guest twice (also ${other}): give one grant per device` });
        return;
      }
      mine.set(dev, path);
      add(dev, { guest: gi, path: gr.window ? `${path}.window` : path, window: gr.window, shared: gr.shared === true });
    });
    g.grants.forEach((gr, j) => {
      if (!isRangeGrant(gr)) return;
      config.devices.forEach((_d, dev) => {
        if (mine.has(dev)) return;
        const touches = facts(dev).ranges?.some((r) => r.space === gr.space && r.start <= gr.end && gr.start <= r.end);
        if (!touches) return;
        const path = `guests[${gi}].grants[${j}]`;
        mine.set(dev, path);
        add(dev, { guest: gi, path, shared: gr.shared === true });
      });
    });
  });
  return out;
}

function describeReach(r: Reach, config: Config, whole = 'the whole disk'): string {
  const span = r.window ? `LBA ${r.window.startLba}-${r.window.startLba + r.window.sectors - 1}` : whole;
  return `${r.path} (guest "${config.guests[r.guest].name}", ${span})`;
}

/**
 * Issues with how guests reach devices, given what is known of the devices now. Pure: the
 * caller supplies the facts (parse: kinds and memory sizes; load: image sizes; start: the
 * opened devices).
 */
export function reachIssues(config: Config, facts: (deviceIndex: number) => DeviceFacts): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const stores = new Map<string, number>();
  config.devices.forEach((d, i) => {
    const st = facts(i).storage;
    if (!st) return;
    const first = stores.get(st.key);
    if (first === undefined) return void stores.set(st.key, i);
    if (st.readOnly && facts(first).storage!.readOnly) return;
    issues.push({
      path: st.path,
      message: `device "${d.id}" uses the image of device "${config.devices[first].id}" (${facts(first).storage!.path}): the guests of each would overwrite the other's; give each device its own image, or make both read-only`,
    });
  });
  const all = reaches(config, facts, issues);
  for (const [dev, list] of all) {
    const d = config.devices[dev];
    const f = facts(dev);
    const disk = f.disk ?? (DISK_KINDS.has(d.kind) || list.some((r) => r.window));
    if (f.multiplexed === false) {
      for (const r of list) {
        if (r.window) issues.push({ path: r.path, message: `device "${d.id}" has no MUX (pass-through router), so nothing would apply this window: the guest would reach the whole device` });
      }
      const first = list.find((r) => !r.shared) ?? list[0];
      for (const r of list) {
        if (r === first || (r.shared && first.shared)) continue;
        issues.push({
          path: r.path,
          message: `device "${d.id}" has no MUX (pass-through router) and is also reached by ${describeReach(first, config, 'the whole device')}: two guests would drive it at once; give a device without a MUX to one guest, or mark every grant of it "shared": true`,
        });
      }
      continue;
    }
    if (!disk) continue;
    const cap = f.sectors;
    const span = (r: Reach): [number, number] => (r.window ? [r.window.startLba, r.window.startLba + r.window.sectors] : [0, cap ?? Infinity]);
    if (cap !== undefined) {
      for (const r of list) {
        if (!r.window) continue;
        const end = r.window.startLba + r.window.sectors;
        if (end > cap) {
          issues.push({
            path: r.path,
            message: `window LBA ${r.window.startLba}-${end - 1} ends past the end of disk "${d.id}", which has ${cap} sectors (${mib(cap)}${f.sizeFrom ? `, ${f.sizeFrom}` : ''})`,
          });
        }
      }
    }
    for (let i = 0; i < list.length; i++) {
      for (let k = 0; k < i; k++) {
        const a = list[k], b = list[i];
        if (a.shared && b.shared) continue;
        const [as, ae] = span(a), [bs, be] = span(b);
        if (!(as < be && bs < ae)) continue;
        issues.push({
          path: b.path,
          message: `overlaps ${describeReach(a, config)} on disk "${d.id}" (from LBA ${Math.max(as, bs)}): the guests would overwrite each other; make the windows disjoint, or mark both grants "shared": true`,
        });
      }
    }
  }
  return issues;
}

type LooseBackend = { type: string; path?: unknown; image?: unknown; sizeMiB?: unknown; create?: unknown; readOnly?: unknown; socket?: unknown; host?: unknown; port?: unknown; exportName?: unknown };

/** The storage a backend names, by its path as written (normalized), or its NBD export. */
function storageOf(b: LooseBackend | undefined, i: number): DeviceFacts['storage'] {
  const at = `devices[${i}].backend`;
  const readOnly = b?.readOnly === true;
  if (b?.type === 'file' && typeof b.path === 'string') return { key: `file:${normalize(b.path)}`, path: `${at}.path`, readOnly };
  if (b?.type === 'qemu' && typeof b.image === 'string') return { key: `file:${normalize(b.image)}`, path: `${at}.image`, readOnly };
  if (b?.type === 'nbd') {
    const where = typeof b.socket === 'string' ? normalize(b.socket) : `${String(b.host)}:${String(b.port ?? 10809)}`;
    return { key: `nbd:${where}#${String(b.exportName ?? '')}`, path: at, readOnly };
  }
  return undefined;
}

/** Facts known when the config is parsed, without I/O: the kind, a memory disk's size, the image's name. */
export function parseFacts(config: Config): (i: number) => DeviceFacts {
  return (i) => {
    const b = config.devices[i].backend as LooseBackend | undefined;
    const storage = storageOf(b, i);
    if (b?.type === 'memory' && typeof b.sizeMiB === 'number') return { sectors: Math.ceil(b.sizeMiB * SECTORS_PER_MIB), sizeFrom: `devices[${i}].backend.sizeMiB ${b.sizeMiB}` };
    return storage ? { storage } : {};
  };
}

/**
 * Facts known when the config file is loaded: the size of an existing image (a `file`
 * backend's, a `qemu` backend's), else the size a `file` backend with `create` makes.
 */
export async function loadFacts(config: Config): Promise<(i: number) => DeviceFacts> {
  const parsed = parseFacts(config);
  const known = await Promise.all(
    config.devices.map(async (d, i): Promise<DeviceFacts> => {
      const b = d.backend as LooseBackend | undefined;
      const image = b?.type === 'file' ? b.path : b?.type === 'qemu' ? b.image : undefined;
      if (typeof image !== 'string') return parsed(i);
      const named = parsed(i).storage;
      const st = await stat(image).then((s) => (s.isFile() ? s : null), () => null);
      // One file by two names (a link, "./x" and "x") is one image: by its inode.
      if (st) return { sectors: Math.floor(st.size / 512), sizeFrom: `image ${image}`, storage: named && { ...named, key: `inode:${st.dev}:${st.ino}` } };
      if (b?.type === 'file' && b.create === true && typeof b.sizeMiB === 'number') {
        return { sectors: Math.ceil(b.sizeMiB * SECTORS_PER_MIB), sizeFrom: `devices[${i}].backend.sizeMiB ${b.sizeMiB}, created`, storage: named };
      }
      return { storage: named };
    }),
  );
  return (i) => known[i];
}
