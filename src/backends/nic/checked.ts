// A network backend's config checked against its own shape, with the field named in the error.

import type { z } from 'zod';

export function checkedBackend<T extends z.ZodType>(schema: T, backend: unknown, id: string): z.output<T> {
  const r = schema.safeParse(backend);
  if (r.success) return r.data;
  const what = r.error.issues.map((i) => `backend${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${i.message}`).join('; ');
  throw new Error(`device ${id}: ${what}`);
}
