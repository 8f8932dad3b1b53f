// Helpers every sub-command uses: global options, the logger, JSON output, error reports.

import type { Command } from 'commander';
import { ConfigError } from '../config/load.ts';
import { type LogLevel, type Logger, createLogger } from '../log.ts';

export interface GlobalOptions {
  logLevel: LogLevel;
  json: boolean;
}

/** The program-level options (--log-level, --json) as seen from a sub-command. */
export function globalOptions(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as { logLevel?: LogLevel; json?: boolean };
  return { logLevel: o.logLevel ?? 'info', json: o.json === true };
}

export function cliLogger(cmd: Command): Logger {
  return createLogger({ level: globalOptions(cmd).logLevel });
}

/** Print one JSON document on stdout (the only thing --json writes there); `line`: one compact line. */
export function printJson(value: unknown, line = false): void {
  process.stdout.write(JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), line ? undefined : 2) + '\n');
}

/**
 * Report a failure: the message on stderr (config errors list each JSON path), and with
 * --json also `{"error": ...}` on stdout. Returns the exit code (1).
 */
export function reportError(e: unknown, json: boolean): number {
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`muxvisor: ${message}\n`);
  if (json) {
    const issues = e instanceof ConfigError ? e.issues : undefined;
    printJson({ ok: false, error: message, ...(issues && issues.length ? { issues } : {}) });
  }
  return 1;
}
