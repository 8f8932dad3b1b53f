// `muxvisor report LOG -o report.html`: one self-contained HTML page of an access log (the
// charts' library inlined, nothing fetched): per device the ownership timeline with the chart's
// unsafe spans, waits, switches, resets and IRQs (zoomable; a click on a span lists its
// accesses), each guest's service share and wait-time distribution, the slowest accesses.

import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { readAll } from '../log/read.ts';
import { reportHtml } from '../report/html.ts';
import { buildReport } from '../report/model.ts';
import { safeStates } from '../report/safe-states.ts';
import { globalOptions, printJson } from './common.ts';

export function register(program: Command): void {
  program
    .command('report')
    .description('write an access log (--access-log) as one self-contained HTML page: ownership timelines, shares, waits, slowest accesses')
    .argument('<log>', 'access log: .jsonl or .mpk, as --access-log wrote it')
    .requiredOption('-o, --output <file>', 'the HTML file to write')
    .action(async (log: string, opts: { output: string }, cmd: Command) => {
      const { json } = globalOptions(cmd);
      const data = await buildReport(log, await readAll(log), safeStates);
      const client = readFileSync(new URL('../report/client.js', import.meta.url), 'utf8');
      writeFileSync(opts.output, reportHtml(data, client));
      const summary = { output: opts.output, devices: data.devices.map((d) => ({ id: d.id, switches: d.switches, spans: d.spans.length })), guests: data.guests };
      if (json) printJson({ ok: true, ...summary });
      else process.stdout.write(`wrote ${opts.output}: ${data.devices.length} device(s), ${data.guests.length} guest(s), ${data.accesses} accesses\n`);
    });
}
