// Disk sharing figures: aggregate verified throughput of 1, 2, 4 and 8 scripted guests on
// one model-backed ATA disk (raw image file) through the MUX, and the sharing efficiency
// (aggregate with 4 guests over aggregate with 1; target >= 0.9). All in one run.

import { runDiskDemo } from '../demo/disk-demo.ts';

export async function run(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const seconds = opts.quick ? 1 : 3;
  const aggregate: Record<string, number> = {};
  const unverified: string[] = [];
  for (const guests of [1, 2, 4, 8]) {
    const r = await runDiskDemo({ guests, seconds, policy: 'round-robin', backend: 'model', mode: 'mixed', seed: 7 });
    // Bytes moved in the timed loop (the final verification pass is not counted).
    const bytes = r.results.reduce((a, g) => a + g.bytes, 0);
    aggregate[String(guests)] = Number((bytes / 1e6 / seconds).toFixed(2));
    for (const g of r.results) if (!g.verified) unverified.push(`${guests} guests: ${g.guest}`);
  }
  const figures: Record<string, unknown> = {
    'disk.aggregateMBps': aggregate,
    'disk.sharingEfficiency': Number((aggregate['4'] / aggregate['1']).toFixed(3)),
  };
  if (unverified.length) figures['disk.error'] = `unverified: ${unverified.join(', ')}`;
  return figures;
}
