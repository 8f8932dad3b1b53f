// Loading and validating the configuration file. Errors name the file and the JSON path.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { shippedMachineUrl } from '../catalog/machines.ts';
import { deviceShapeIssues } from './device-shapes.ts';
import { missingImageIssues } from './images.ts';
import { parseJsonText } from './json-text.ts';
import { type Config, ConfigSchema, type ConfigIssue, crossCheck, flattenIssues } from './schema.ts';
import { loadFacts, parseFacts, reachIssues } from './windows.ts';

export class ConfigError extends Error {
  constructor(
    /** The file (or `<inline>`) the configuration came from. */
    readonly source: string,
    readonly issues: ConfigIssue[],
    summary?: string,
  ) {
    super(summary ?? `${source}: invalid configuration:\n` + issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

export interface ParseOptions {
  /** Device kinds that exist; a device of another kind is an error. Unchecked when absent. */
  knownKinds?: readonly string[];
  /** Directory relative paths are resolved against (the config file's). Unchanged when absent. */
  baseDir?: string;
}


function resolvePaths(config: Config, baseDir: string): Config {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  if (!config.socket.startsWith('tcp:')) config.socket = abs(config.socket);
  for (const d of config.devices) {
    if (d.backend?.type === 'file') d.backend.path = abs(d.backend.path);
    // Other backends' shapes are their own (loose here); a qemu backend's image is a path.
    const b = d.backend as { type: string; image?: unknown } | undefined;
    if (b?.type === 'qemu' && typeof b.image === 'string' && b.image !== '') b.image = abs(b.image);
    if (d.policy?.module) d.policy.module = abs(d.policy.module);
    // `mux.machine` (and the deprecated `properties.machine`): a shipped machine name, else a
    // module path (src/mux/router-factory.ts).
    const m = d.properties.machine;
    if (typeof m === 'string' && m !== '' && shippedMachineUrl(m) === null) d.properties.machine = abs(m);
    if (d.mux?.machine !== undefined && shippedMachineUrl(d.mux.machine) === null) d.mux.machine = abs(d.mux.machine);
    if (d.model !== undefined) d.model = abs(d.model);
  }
  for (const g of config.guests) {
    if (g.run?.type === 'kvm') g.run.image = abs(g.run.image);
    if (g.run?.type === 'user') {
      // cwd, and a program named by a path (it has a "/"), against the file's folder like every
      // other path; a bare name ("lspci") is looked up on PATH. Without cwd the program runs
      // where muxvisor does.
      if (g.run.cwd !== undefined) g.run.cwd = abs(g.run.cwd);
      const prog = g.run.argv[0];
      if (prog.includes('/')) g.run.argv[0] = abs(prog);
    }
    if (g.run?.type === 'qemu') {
      for (const k of ['kernel', 'initrd', 'console'] as const) {
        const v = g.run[k];
        if (v !== undefined) g.run[k] = abs(v);
      }
    }
    if (g.auth?.tokenFile) g.auth.tokenFile = abs(g.auth.tokenFile);
    // A scripted driver is a path when it looks like one, else a built-in driver name.
    if (g.run?.type === 'scripted' && /[/\\]|\.[cm]?[tj]s$/.test(g.run.driver)) g.run.driver = abs(g.run.driver);
  }
  return config;
}

/** A `model` or `mux.machine` module that does not exist, by JSON path (loading it is the supervisor's and the MUX's). */
function missingModuleIssues(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  config.devices.forEach((d, i) => {
    if (d.model !== undefined && !existsSync(d.model)) issues.push({ path: `devices[${i}].model`, message: `no such file: ${d.model}` });
    const m = d.mux?.machine;
    if (m !== undefined && shippedMachineUrl(m) === null && !existsSync(m)) issues.push({ path: `devices[${i}].mux.machine`, message: `no shipped machine "${m}" and no such file` });
  });
  return issues;
}

/** Validate an already-parsed JSON value. Throws ConfigError. */
export function parseConfig(value: unknown, source = '<inline>', options: ParseOptions = {}): Config {
  const r = ConfigSchema.safeParse(value);
  if (!r.success) throw new ConfigError(source, flattenIssues(r.error.issues, [], ConfigSchema));
  const issues = crossCheck(r.data, options.knownKinds);
  if (issues.length === 0) issues.push(...reachIssues(r.data, parseFacts(r.data)));
  if (issues.length > 0) throw new ConfigError(source, issues);
  return options.baseDir ? resolvePaths(r.data, options.baseDir) : r.data;
}

/**
 * Read, parse and validate a configuration file. Relative paths inside it (socket,
 * backend files, policy, machine and device-model modules, images, driver files, a user guest's `cwd` and
 * program, a qemu guest's kernel, initrd and console) are resolved against its directory; an
 * image file that does not exist is an error unless the backend says `"create": true`. The backend and properties of a built-in device kind are checked against
 * that kind's own shapes too (src/config/device-shapes.ts), so their errors name the JSON path.
 */
export async function loadConfig(file: string, options: Omit<ParseOptions, 'baseDir'> = {}): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EISDIR' ? 'is a directory' : err.message;
    throw new ConfigError(file, [], `cannot read configuration file ${file}: ${why}`);
  }
  let value: unknown;
  try {
    value = parseJsonText(text, file);
  } catch (e) {
    // FILE:LINE:COL: not valid JSON: REASON, then the line with a caret.
    throw new ConfigError(file, [], (e as Error).message);
  }
  const config = parseConfig(value, file, { ...options, baseDir: dirname(resolve(file)) });
  const issues = await deviceShapeIssues(config.devices);
  issues.push(...missingModuleIssues(config));
  issues.push(...(await missingImageIssues(config)));
  // Windows against the sizes of existing images (what parseConfig could not know without I/O).
  if (issues.length === 0) issues.push(...reachIssues(config, await loadFacts(config)));
  if (issues.length > 0) throw new ConfigError(file, issues);
  return config;
}

/** The JSON Schema of the configuration file, generated from the zod schema. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ConfigSchema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as Record<string, unknown>;
}
