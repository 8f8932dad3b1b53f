// `muxvisor replay LOG --guest G --device-kind K`: re-drive one guest's recorded accesses
// against another device and report the first answer that differs (src/log/replay/).
// Exit status 0: no divergence; 1: a divergence (or an error).

import { type Command, Option } from 'commander';
import { replay, type ReplayResult } from '../log/replay/replay.ts';
import { accessLine } from '../log/show.ts';
import { createLogger } from '../log.ts';
import { cliLogger, globalOptions, printJson } from './common.ts';

function report(r: ReplayResult, log: string): string {
  const head = `replay of guest ${r.guest} (device ${r.device}) from ${log} on ${r.kind}`;
  const notes = `${r.polls} reads of a busy device not compared (polls); normalised: ${r.normalised}` + (r.normalisedReads ? ` (${r.normalisedReads} IDENTIFY read${r.normalisedReads > 1 ? 's' : ''} differed only there)` : '');
  if (!r.divergence) return `${head}: ${r.accesses} accesses, no divergence\n${notes}`;
  const d = r.divergence;
  const dir = d.record.dir === 'r' ? 'read' : 'write';
  return [
    `${head}: first divergence at access ${d.index + 1} (${log} line ${d.line})`,
    `  ${d.reg ?? 'unnamed register'} ${d.record.space} 0x${d.addr.toString(16)} ${dir}: expected ${d.expected}, got ${d.got}`,
    `  the ${d.before.length} accesses before it (as recorded):`,
    ...d.before.map((a) => `    ${accessLine(a)}`),
    `  > ${accessLine(d.record)}`,
    notes,
  ].join('\n');
}

export function register(program: Command): void {
  program
    .command('replay')
    .description("re-drive one guest's recorded accesses (--access-log) against another device; report the first answer that differs (exit 1)")
    .argument('<log>', 'access log (.jsonl or .mpk)')
    .requiredOption('--guest <name>', 'the guest whose accesses to replay')
    .addOption(new Option('--device-kind <kind>', 'the device to replay against: our ATA model, or QEMU\'s IDE over qtest').choices(['ata', 'qemu-ide']).makeOptionMandatory())
    .option('--device <id>', 'the recorded device, when the guest used several')
    .option('--strict', 'compare IDENTIFY data in full (no normalised words)', false)
    .option('--context <n>', 'accesses shown before a divergence', '20')
    .action(async (log: string, opts: { guest: string; deviceKind: string; device?: string; strict: boolean; context: string }, cmd: Command) => {
      const { json } = globalOptions(cmd);
      const context = Number(opts.context);
      if (!Number.isInteger(context) || context < 0) throw new Error(`--context must be a whole number >= 0, got "${opts.context}"`);
      // The report is the output: the supervisor's own logs stay at warn unless --log-level was given.
      const explicit = cmd.parent?.getOptionValueSource('logLevel') === 'cli';
      const logger = explicit ? cliLogger(cmd) : createLogger({ level: 'warn' });
      const r = await replay({ log, guest: opts.guest, deviceKind: opts.deviceKind, device: opts.device, strict: opts.strict, context, logger });
      if (json) printJson({ ok: !r.divergence, ...r });
      else process.stdout.write(report(r, log) + '\n');
      process.exitCode = r.divergence ? 1 : 0;
    });
}
