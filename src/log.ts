// Logging: pino JSON lines on stderr (stdout is for --json output); pino-pretty when
// stderr is a terminal. Modules take a Logger; `silentLogger` for tests and libraries.

import pino from 'pino';
import pretty from 'pino-pretty';
import { colorEnabled } from './util/color.ts';

export type Logger = pino.Logger;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  level?: LogLevel;
  /** Human-readable output; defaults to whether stderr is a TTY. */
  pretty?: boolean;
  name?: string;
}

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const base = { level, name: options.name ?? 'muxvisor', formatters: { level: (label: string) => ({ level: label }) } };
  if (options.pretty ?? process.stderr.isTTY === true) {
    // pino-pretty as a synchronous stream, not a worker transport: nothing is lost on exit.
    // Colour on a terminal unless NO_COLOR is set (https://no-color.org).
    return pino(base, pretty({ destination: 2, sync: true, colorize: colorEnabled(process.stderr), ignore: 'pid,hostname' }));
  }
  return pino(base, pino.destination({ dest: 2, sync: true }));
}

/** A logger that writes nothing. */
export const silentLogger: Logger = pino({ level: 'silent' });
