// `muxvisor log show|stats|diff|export FILE...`: read access logs written with --access-log
// (src/log/). show: one line per access with register names and decoded values; stats:
// counts per guest and register; diff: two runs aligned per guest on their register sequence,
// the first divergence with context (exit status 1); export --mmiotrace: Linux's mmiotrace text.

import { createWriteStream } from 'node:fs';
import { Command } from 'commander';
import { formatTable } from '../demo/table.ts';
import { diffLogs, type DiffResult, type Step } from '../log/diff.ts';
import { matches, parseTime, type LogFilter } from '../log/filter.ts';
import { MmiotraceWriter } from '../log/mmiotrace.ts';
import { readAll, readLog } from '../log/read.ts';
import type { AccessRecord, EventRecord, LogRecord } from '../log/record.ts';
import { accessLine, eventLine } from '../log/show.ts';
import { StatsCollector } from '../log/stats.ts';
import { globalOptions, printJson } from './common.ts';

interface FilterOpts {
  guest?: string[];
  device?: string[];
  register?: string[];
  from?: string;
  to?: string;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').filter(Boolean)];

function withFilters(c: Command): Command {
  return c
    .option('--guest <name>', 'only this guest (repeat or comma-separate for more)', collect)
    .option('--device <id>', 'only this device (repeatable)', collect)
    .option('--register <name>', 'only this register (ATA_REG_CMD, or its last part: CMD; repeatable)', collect)
    .option('--from <time>', 'from this time since the log started (1.5s, 200ms, 30us, or ns)')
    .option('--to <time>', 'up to this time');
}

function filterOf(o: FilterOpts): LogFilter {
  return {
    guests: o.guest,
    devices: o.device,
    registers: o.register,
    from: o.from !== undefined ? parseTime(o.from, '--from') : undefined,
    to: o.to !== undefined ? parseTime(o.to, '--to') : undefined,
  };
}

/** Lines to stdout, waiting for it to drain (a pager or `head` reads slowly); stops quietly on EPIPE. */
class LineSink {
  private buf = '';
  closed = false;
  constructor(private readonly stream: NodeJS.WritableStream = process.stdout) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') this.closed = true;
      else throw e;
    });
  }

  async put(line: string): Promise<void> {
    this.buf += line + '\n';
    if (this.buf.length >= 64 * 1024) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.closed || this.buf === '') return;
    const ok = this.stream.write(this.buf);
    this.buf = '';
    if (!ok && !this.closed) await new Promise((r) => this.stream.once('drain', r));
  }

  /** Flush; end the stream unless it is stdout. */
  async end(): Promise<void> {
    await this.flush();
    if (this.stream !== process.stdout) await new Promise<void>((r) => this.stream.end(r));
  }
}

function stepLine(s: Step, mark: string): string {
  return `${mark} ${String(s.line).padStart(7)}  ${accessLine(s.rec)}${s.repeat > 1 ? `  (x${s.repeat})` : ''}`;
}

function printDiff(d: DiffResult, fileA: string, fileB: string): void {
  const out: string[] = [];
  for (const g of d.guests) {
    const name = g.guestA === g.guestB ? `guest ${g.guestA}` : `guests ${g.guestA} / ${g.guestB}`;
    if (!g.divergence) {
      out.push(`${name}: no divergence (${g.stepsA} steps, repeated reads folded)`);
      continue;
    }
    const v = g.divergence;
    out.push(`${name}: first divergence at step ${v.index + 1} of ${g.stepsA} / ${g.stepsB}` + (v.a && v.b ? ` (${fileA} record ${v.a.line}, ${fileB} record ${v.b.line})` : ''));
    out.push(`  same in both:`);
    for (const s of v.before) out.push(stepLine(s, ' '));
    out.push(v.a ? stepLine(v.a, 'A') : `A         (${fileA} ends here)`);
    out.push(v.b ? stepLine(v.b, 'B') : `B         (${fileB} ends here)`);
    if (v.afterA.length) out.push(`  then in A:`, ...v.afterA.map((s) => stepLine(s, ' ')));
    if (v.afterB.length) out.push(`  then in B:`, ...v.afterB.map((s) => stepLine(s, ' ')));
  }
  for (const g of d.onlyInA) out.push(`guest ${g}: only in ${fileA}`);
  for (const g of d.onlyInB) out.push(`guest ${g}: only in ${fileB}`);
  process.stdout.write(out.join('\n') + '\n');
}

export function register(program: Command): void {
  const log = program.command('log').description('read access logs (--access-log): show, stats, diff, export');

  withFilters(log.command('show').description('one readable line per access (register names, decoded commands and status bits) and per MUX event'))
    .argument('<file...>', 'access logs (.jsonl or .mpk)')
    .option('--no-events', 'accesses only, no MUX events')
    .action(async (files: string[], opts: FilterOpts & { events: boolean }, cmd: Command) => {
      const { json } = globalOptions(cmd);
      const f = filterOf(opts);
      const sink = new LineSink();
      for (const file of files) {
        for await (const r of readLog(file)) {
          if (sink.closed) return;
          if (!matches(r, f) || (r.type === 'event' && !opts.events)) continue;
          if (json) await sink.put(JSON.stringify(r, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v)));
          else await sink.put(r.type === 'access' ? accessLine(r) : eventLine(r as EventRecord));
        }
      }
      await sink.end();
    });

  withFilters(log.command('stats').description('accesses per guest and register, per-guest totals, MUX events per kind'))
    .argument('<file...>', 'access logs (.jsonl or .mpk)')
    .action(async (files: string[], opts: FilterOpts, cmd: Command) => {
      const { json } = globalOptions(cmd);
      const f = filterOf(opts);
      const c = new StatsCollector();
      for (const file of files) for await (const r of readLog(file)) if (matches(r, f)) c.add(r as AccessRecord | EventRecord);
      const s = c.result();
      if (json) return printJson(s);
      const us = (ns: number) => (ns / 1e3).toFixed(0);
      const out = [
        formatTable(['guest', 'accesses', 'bytes', 'stalled', 'stall us', 'errors'], s.guests.map((g) => [g.guest, g.accesses, g.bytes, g.stalls, us(g.stallNs), g.errors])),
        '',
        formatTable(['guest', 'device', 'register', 'reads', 'writes', 'bytes', 'stall us', 'errors'], s.registers.map((r) => [r.guest, r.device ?? '-', r.reg, r.reads, r.writes, r.bytes, us(r.stallNs), r.errors]), ['device', 'register']),
        '',
        `events: ${Object.entries(s.events).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
      ];
      process.stdout.write(out.join('\n') + '\n');
    });

  log
    .command('diff')
    .description('compare two runs per guest on their register sequence (repeated identical reads folded); exit status 1 at a divergence')
    .argument('<a>', 'first access log')
    .argument('<b>', 'second access log')
    .option('--guest <name>', 'compare only this guest (repeatable)', collect)
    .option('--context <n>', 'steps shown before the divergence', '5')
    .action(async (a: string, b: string, opts: { guest?: string[]; context: string }, cmd: Command) => {
      const { json } = globalOptions(cmd);
      const context = Number(opts.context);
      if (!Number.isInteger(context) || context < 0) throw new Error(`--context must be a whole number >= 0, got "${opts.context}"`);
      const d = diffLogs(await readAll(a), await readAll(b), { guests: opts.guest, context });
      if (json) printJson({ same: d.guests.every((g) => !g.divergence) && !d.onlyInA.length && !d.onlyInB.length, ...d }, false);
      else printDiff(d, a, b);
      if (d.guests.length === 0) throw new Error(`${a} and ${b} have no guest in common (give --guest)`);
      process.exitCode = d.guests.some((g) => g.divergence) || d.onlyInA.length || d.onlyInB.length ? 1 : 0;
    });

  withFilters(log.command('export').description("convert a log: --mmiotrace writes Linux's mmiotrace text format (Documentation/trace/mmiotrace.rst)"))
    .argument('<file>', 'access log (.jsonl or .mpk)')
    .option('--mmiotrace', "Linux's mmiotrace text (VERSION 20070824): R/W/MAP/MARK lines")
    .option('--mmio-only', 'leave port I/O out (mmiotrace itself knows only MMIO)')
    .option('-o, --output <file>', 'write here instead of stdout')
    .action(async (file: string, opts: FilterOpts & { mmiotrace?: boolean; mmioOnly?: boolean; output?: string }) => {
      if (!opts.mmiotrace) throw new Error('log export: choose a format (--mmiotrace)');
      const f = filterOf(opts);
      const stream = opts.output ? createWriteStream(opts.output) : process.stdout;
      const sink = new LineSink(stream);
      const lines: string[] = [];
      const w = new MmiotraceWriter((l) => lines.push(l), { mmioOnly: opts.mmioOnly });
      for await (const r of readLog(file)) {
        if (r.type !== 'header' && !matches(r, f)) continue;
        w.record(r as LogRecord);
        for (const l of lines.splice(0)) await sink.put(l);
      }
      await sink.end();
    });

  for (const c of log.commands) c.exitOverride();
  log.exitOverride();
}
