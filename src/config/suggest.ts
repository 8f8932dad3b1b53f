// "Did you mean": the known field nearest to a misspelt one. The known fields at a JSON path
// come from the zod schema itself (every branch of a union: a grant may be any of three shapes),
// so a new field is suggested as soon as the schema has it.

import type { z } from 'zod';

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  valueType?: z.ZodType;
}

const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The object shapes a value at `path` may have under `schema` (several for a union). */
function shapesAt(schema: z.ZodType, path: readonly PropertyKey[]): Record<string, z.ZodType>[] {
  const def = defOf(schema);
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
      return shapesAt(def.innerType!, path); // these wrappers all have innerType
    case 'pipe':
      return shapesAt(def.in!, path);
    case 'union':
      return def.options!.flatMap((o) => shapesAt(o, path));
  }
  if (path.length === 0) return def.type === 'object' ? [def.shape!] : [];
  const [head, ...rest] = path;
  if (def.type === 'object') {
    const next = def.shape![String(head)];
    return next ? shapesAt(next, rest) : [];
  }
  if (def.type === 'array' && typeof head === 'number') return shapesAt(def.element!, rest);
  if (def.type === 'record') return shapesAt(def.valueType!, rest);
  return [];
}

/** The fields an object at `path` may have under `schema`, in schema order, without repeats. */
export function knownFieldsAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  return [...new Set(shapesAt(schema, path).flatMap((s) => Object.keys(s)))];
}

/** Edit distance with adjacent transpositions (optimal string alignment), case-insensitive. */
export function editDistance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The candidate nearest to `word`, when it is near enough to be a slip (≤ 1 edit per 3 letters, at least 1). */
export function nearest(word: string, candidates: readonly string[]): string | null {
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = editDistance(word, c);
    if (dist < bestD) [best, bestD] = [c, dist];
  }
  return bestD <= limit ? best : null;
}
