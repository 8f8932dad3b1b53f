// Image files a configuration names must exist, unless it asks for them to be made: a missing
// file is a configuration error at its JSON path that says how to have it created.

import { stat } from 'node:fs/promises';
import type { Config, ConfigIssue } from './schema.ts';

const exists = (path: string): Promise<'file' | 'other' | 'none'> =>
  stat(path).then(
    (s) => (s.isFile() || s.isBlockDevice() ? 'file' : 'other'),
    () => 'none' as const,
  );

/** Issues for file backends and qemu images that do not exist (paths already resolved). */
export async function missingImageIssues(config: Config): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  for (const [i, d] of config.devices.entries()) {
    const b = d.backend as { type?: string; path?: unknown; image?: unknown; create?: unknown; readOnly?: unknown } | undefined;
    if (b?.type === 'file' && typeof b.path === 'string' && b.create !== true) {
      const what = await exists(b.path);
      if (what === 'none') {
        const hint = b.readOnly === true ? '' : '; add "create": true (and "sizeMiB") to make an empty sparse one';
        issues.push({ path: `devices[${i}].backend.path`, message: `image ${b.path} does not exist${hint}` });
      } else if (what === 'other') issues.push({ path: `devices[${i}].backend.path`, message: `image ${b.path} is not a file` });
    }
    if (b?.type === 'qemu' && typeof b.image === 'string' && (await exists(b.image)) === 'none') {
      issues.push({ path: `devices[${i}].backend.image`, message: `image ${b.image} does not exist` });
    }
  }
  return issues;
}
