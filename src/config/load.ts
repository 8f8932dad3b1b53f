// Loading and validating the configuration file. Errors name the file and the JSON path.

import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { shippedMachineUrl } from '../catalog/machines.ts';
import { deviceShapeIssues } from './device-shapes.ts';
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
    if (d.policy?.module) d.policy.module = abs(d.policy.module);
    // `properties.machine`: a shipped machine name, else a module path (src/mux/router-factory.ts).
    const m = d.properties.machine;
    if (typeof m === 'string' && m !== '' && shippedMachineUrl(m) === null) d.properties.machine = abs(m);
  }
  for (const g of config.guests) {
    if (g.run?.type === 'kvm') g.run.image = abs(g.run.image);
    if (g.auth?.tokenFile) g.auth.tokenFile = abs(g.auth.tokenFile);
    // A scripted driver is a path when it looks like one, else a built-in driver name.
    if (g.run?.type === 'scripted' && /[/\\]|\.[cm]?[tj]s$/.test(g.run.driver)) g.run.driver = abs(g.run.driver);
  }
  return config;
}

/** Validate an already-parsed JSON value. Throws ConfigError. */
export function parseConfig(value: unknown, source = '<inline>', options: ParseOptions = {}): Config {
  const r = ConfigSchema.safeParse(value);
  if (!r.success) throw new ConfigError(source, flattenIssues(r.error.issues));
  const issues = crossCheck(r.data, options.knownKinds);
  if (issues.length === 0) issues.push(...reachIssues(r.data, parseFacts(r.data)));
  if (issues.length > 0) throw new ConfigError(source, issues);
  return options.baseDir ? resolvePaths(r.data, options.baseDir) : r.data;
}

/**
 * Read, parse and validate a configuration file. Relative paths inside it (socket,
 * backend files, policy and machine modules, images, driver files) are resolved against
 * its directory. The backend and properties of a built-in device kind are checked against
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
    value = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(file, [], `${file}: not valid JSON: ${(e as Error).message}`);
  }
  const config = parseConfig(value, file, { ...options, baseDir: dirname(resolve(file)) });
  const issues = await deviceShapeIssues(config.devices);
  // Windows against the sizes of existing images (what parseConfig could not know without I/O).
  if (issues.length === 0) issues.push(...reachIssues(config, await loadFacts(config)));
  if (issues.length > 0) throw new ConfigError(file, issues);
  return config;
}

/** The JSON Schema of the configuration file, generated from the zod schema. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ConfigSchema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as Record<string, unknown>;
}
