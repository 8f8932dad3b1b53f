// The access log's cost: the disk demo's verified throughput (4 scripted guests, mixed PIO and
// DMA, our ATA model on an image file) with and without `--access-log` (JSON lines to a file in
// the temporary folder). Interleaved rounds of short samples, each round's own ratio; the figure
// is the median over the rounds (the machine is shared and noisy, see disk.ts). Target: the log
// costs at most 25% of the throughput. On a loaded machine (other processes taking the CPU in
// bursts) the throughput ratio swings widely between runs; the CPU this process spends per MB
// moved is steadier, so the bench reports that ratio too (log.cpuOverhead: what the log costs
// where the demo is CPU-bound).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDiskDemo } from '../demo/disk-demo.ts';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

export async function run(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const rounds = opts.quick ? 3 : 7;
  const seconds = opts.quick ? 0.3 : 0.6;
  const dir = mkdtempSync(join(tmpdir(), 'muxvisor-bench-log-'));
  const unverified: string[] = [];
  let records = 0;
  let recordSeconds = 0;
  const cpu: Record<'with' | 'without', number[]> = { with: [], without: [] };
  const sample = async (logged: boolean): Promise<number> => {
    const file = join(dir, 'access.jsonl');
    const before = process.cpuUsage();
    const r = await runDiskDemo({ guests: 4, seconds, policy: 'round-robin', backend: 'model', mode: 'mixed', seed: 7, accessLog: logged ? file : undefined });
    const used = process.cpuUsage(before);
    const mb = r.results.reduce((a, g) => a + g.bytes, 0) / 1e6;
    cpu[logged ? 'with' : 'without'].push((used.user + used.system) / 1e3 / mb); // ms of CPU per MB moved
    for (const g of r.results) if (!g.verified) unverified.push(`${logged ? 'with' : 'without'} log: ${g.guest}`);
    if (logged) {
      // Lines (records) per second of the whole run, final verification included.
      records += readFileSync(file, 'utf8').split('\n').length - 1;
      recordSeconds += r.elapsedNs / 1e9;
      rmSync(file);
    }
    return r.results.reduce((a, g) => a + g.bytes, 0) / 1e6 / seconds;
  };
  try {
    await sample(false); // warm-up (JIT), not counted
    await sample(true);
    cpu.with.length = 0;
    cpu.without.length = 0;
    const without: number[] = [];
    const withLog: number[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < rounds; i++) {
      // Alternate which goes first, so a slow second of the machine hits both sides alike.
      const a = i % 2 === 0 ? await sample(false) : 0;
      const b = await sample(true);
      const c = i % 2 === 1 ? await sample(false) : a;
      without.push(c);
      withLog.push(b);
      ratios.push(b / c);
    }
    const figures: Record<string, unknown> = {
      'log.overhead': Number(Math.max(0, 1 - median(ratios)).toFixed(3)),
      'log.throughputMBps.without': Number(median(without).toFixed(2)),
      'log.throughputMBps.with': Number(median(withLog).toFixed(2)),
      'log.recordsPerSec': Math.round(records / recordSeconds),
      'log.cpuMsPerMB.without': Number(median(cpu.without).toFixed(1)),
      'log.cpuMsPerMB.with': Number(median(cpu.with).toFixed(1)),
      'log.cpuOverhead': Number(Math.max(0, 1 - median(cpu.without) / median(cpu.with)).toFixed(3)),
    };
    if (unverified.length) figures['log.error'] = `unverified: ${unverified.join(', ')}`;
    return figures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
