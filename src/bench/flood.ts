// What a flooding guest costs the honest ones (src/bench/flood/scenario.ts): two trapped
// ata-pio drivers write and verify their windows of a disk served by `muxvisor run`, alone,
// then while a hostile guest floods the socket (64 KiB string reads it never reads the
// replies of, a read over the per-access limit, 200 half first frames and 200 half 1 MiB
// frames, 1000 simultaneous connects, 0.5 s into the guests' work). Runs alternate, the
// medians are compared:
//  - flood.honestSectorsPerSec.quiet / .flooded: sectors written + read per second, both guests
//    (each timed by the driver itself, from its first access to its verdict);
//  - flood.throughputRatio: flooded / quiet (1 = the flood costs the honest guests nothing);
//  - flood.supervisorCpuMs.quiet / .flooded: CPU the supervisor used meanwhile (the flood's
//    cost to the supervisor, which the machine's other load does not move much);
//  - flood.rssGrowthMiB.quiet / .flooded: the supervisor's RSS growth over the run (median);
//  - flood.rssBoundMiB: the documented bound for the run's three guests (PROTOCOL.md "Limits").

import { existsSync } from 'node:fs';
import { supervisorBound } from '../channel/flow.ts';
import { TRAP_LIB } from '../trap/user.ts';
import { ATA_PIO, type FloodResult, runFlood } from './flood/scenario.ts';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;

export async function run(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  for (const f of [ATA_PIO, TRAP_LIB]) if (!existsSync(f)) throw new Error(`${f} is not built (npm install builds native/)`);
  // The machine's other load moves single runs by tens of percent: medians of alternating runs.
  const rounds = opts.quick ? 1 : 7;
  const shape = { honest: 2, sectors: opts.quick ? 256 : 1024, passes: 2 };
  const quiet: FloodResult[] = [];
  const flooded: FloodResult[] = [];
  for (let i = 0; i < rounds; i++) {
    quiet.push(await runFlood({ ...shape, flood: false }));
    // The bursts hit guests at work: a guest that connects during a burst of silent
    // connects may wait for the hello gate to reach it (PROTOCOL.md "Limits"), which is
    // latency the flood causes, not throughput; test/channel-flood.test.ts has them connect
    // during the burst and checks that they are served.
    flooded.push(await runFlood({ ...shape, flood: true, burstDelayMs: 500 }));
  }
  for (const r of [...quiet, ...flooded]) {
    const bad = r.honest.find((h) => !h.ok);
    if (bad) throw new Error(`honest guest ${bad.guest} failed: ${bad.line}`);
  }
  const q = median(quiet.map((r) => r.sectorsPerSecond));
  const f = median(flooded.map((r) => r.sectorsPerSecond));
  const refused = flooded.map((r) => Number(r.flood.find((x) => x.mode === 'connects')?.refused ?? NaN));
  return {
    'flood.honestSectorsPerSec.quiet': q,
    'flood.honestSectorsPerSec.flooded': f,
    'flood.throughputRatio': Math.round((f / q) * 100) / 100,
    'flood.supervisorCpuMs.quiet': median(quiet.map((r) => r.supervisorCpuMs)),
    'flood.supervisorCpuMs.flooded': median(flooded.map((r) => r.supervisorCpuMs)),
    'flood.rssGrowthMiB.quiet': mib(median(quiet.map((r) => r.rss.maxKiB - r.rss.beforeKiB))),
    'flood.rssGrowthMiB.flooded': mib(median(flooded.map((r) => r.rss.maxKiB - r.rss.beforeKiB))),
    'flood.rssBoundMiB': mib(supervisorBound(3) / 1024),
    'flood.connectsRefused': Math.max(...refused),
    'flood.rounds': rounds,
  };
}
