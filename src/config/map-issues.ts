// Where the devices' register regions go, checked as configuration: a `map` entry must name a
// region the device has, a port region must end within the 64 KiB port space, and no two fixed
// regions (a `map` base, or the legacy base a device kind places itself at) may overlap. Each
// issue names the JSON path to change (`devices[1].map.cmd`) and the other device's path.

import type { RegionInfo } from '../device.ts';
import type { ConfigIssue } from './schema.ts';
import { nearest } from './suggest.ts';

export interface PlacedDevice {
  /** Index in the configuration's `devices`. */
  index: number;
  id: string;
  kind: string;
  map: Record<string, number>;
  regions: readonly RegionInfo[];
}

const hex = (n: number): string => '0x' + n.toString(16);
const PORT_SPACE_END = 0xffff;

interface Fixed {
  path: string;
  what: string;
  space: RegionInfo['space'];
  start: number;
  end: number;
}

/** Issues of the regions with a fixed base (map or legacy); BAR-only regions are placed later in free space. */
export function mapIssues(devices: readonly PlacedDevice[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const fixed: Fixed[] = [];
  for (const d of devices) {
    const names = d.regions.map((r) => r.name);
    for (const name of Object.keys(d.map)) {
      if (names.includes(name)) continue;
      const near = nearest(name, names);
      issues.push({
        path: `devices[${d.index}].map.${name}`,
        message: `${d.kind} has no region "${name}"${near ? ` (did you mean "${near}"?)` : ''}; its regions: ${names.map((n) => `"${n}"`).join(', ') || 'none'}`,
      });
    }
    for (const r of d.regions) {
      const mapped = d.map[r.name];
      const base = mapped ?? r.legacyBase;
      if (base === undefined) continue;
      const path = mapped !== undefined ? `devices[${d.index}].map.${r.name}` : `devices[${d.index}]`;
      const where = mapped !== undefined ? '' : ` (its legacy base; "map": {"${r.name}": ...} moves it)`;
      const end = base + r.size - 1;
      const what = `region ${r.name} of "${d.id}", ${r.space} ${hex(base)}-${hex(end)}`;
      if (r.space === 'pio' && end > PORT_SPACE_END) {
        issues.push({ path, message: `${what} ends beyond the 64 KiB port space (last port 0xffff)${where}` });
        continue;
      }
      const clash = fixed.find((f) => f.space === r.space && f.start <= end && base <= f.end);
      if (clash) issues.push({ path, message: `${what} overlaps ${clash.what} (${clash.path})${where}` });
      else fixed.push({ path, what, space: r.space, start: base, end });
    }
  }
  return issues;
}
