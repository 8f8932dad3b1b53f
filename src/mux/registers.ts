// Resolve a definition's register map against the device's regions: (region, offset) -> register
// in O(1) on the hot path, and the cross-references (context, reset) checked once.

import { MuxDefinitionError, type MuxDefinition, type Register } from './define.ts';

export interface RegisterMap {
  /** The register at (region index, offset) for that direction, if the map names one there. */
  at(region: number, offset: number, dir: 'read' | 'write'): Register | undefined;
  /** A register by name; throws MuxDefinitionError when the map has none. */
  byName(name: string): Register;
  isContext(reg: Register): boolean;
  readonly all: Register[];
  readonly regionNames: string[];
}

/** Problems of a definition's register map, as text (empty when none); used by check-machine too. */
export function registerProblems(def: MuxDefinition, regionNames?: string[]): string[] {
  const problems: string[] = [];
  const regs = def.registers ?? {};
  if (regionNames)
    for (const [name, r] of Object.entries(regs))
      if (!regionNames.includes(r.region)) problems.push(`register ${name} names region ${r.region}, which the device does not have (${regionNames.join(', ')})`);
  for (const c of def.context ?? [])
    if (!regs[c.reg] && !c.replay) problems.push(`context register ${c.reg} is not in the register map (a pseudo register needs a replay function)`);
  for (const w of def.reset?.writes ?? []) if (!regs[w.reg]) problems.push(`reset path register ${w.reg} is not in the register map`);
  // Two registers may share an offset only with opposite directions (ATA STATUS is read, COMMAND written there).
  const seen = new Map<string, string>();
  for (const [name, r] of Object.entries(regs))
    for (const dir of ['r', 'w'] as const) {
      if (!(r.access ?? 'rw').includes(dir)) continue;
      const key = `${r.region}:${r.offset}:${dir}`;
      const other = seen.get(key);
      if (other) problems.push(`registers ${other} and ${name} both ${dir === 'r' ? 'read' : 'write'} ${r.region}+${r.offset}`);
      else seen.set(key, name);
    }
  return problems;
}

/**
 * Build the lookup. `regionNames` are device.describe().regions names in order; without them
 * (lint, no device) regions are numbered in order of first mention in the register map.
 */
export function resolveRegisters(def: MuxDefinition, regionNames?: string[]): RegisterMap {
  const problems = registerProblems(def, regionNames);
  if (problems.length) throw new MuxDefinitionError(def.kind, problems.join('; '));
  const names = regionNames ?? [...new Set(Object.values(def.registers).map((r) => r.region))];
  const all: Register[] = Object.entries(def.registers).map(([name, r]) => ({ ...r, name, regionIndex: names.indexOf(r.region) }));
  const byName = new Map(all.map((r) => [r.name, r]));
  // Sparse arrays indexed by offset, one per region and direction: the hot-path lookup.
  const reads: Array<Array<Register | undefined>> = names.map(() => []);
  const writes: Array<Array<Register | undefined>> = names.map(() => []);
  for (const r of all) {
    if ((r.access ?? 'rw').includes('r')) reads[r.regionIndex][r.offset] = r;
    if ((r.access ?? 'rw').includes('w')) writes[r.regionIndex][r.offset] = r;
  }
  // By name: translation hooks may forward copies of a register object.
  const context = new Set((def.context ?? []).filter((c) => byName.has(c.reg)).map((c) => c.reg));
  return {
    at: (region, offset, dir) => (dir === 'read' ? reads : writes)[region]?.[offset],
    byName(name) {
      const r = byName.get(name);
      if (!r) throw new MuxDefinitionError(def.kind, `no register named ${name}`);
      return r;
    },
    isContext: (reg) => context.has(reg.name),
    all,
    regionNames: names,
  };
}
