// A hostile guest floods `muxvisor run` (a separate process) while two honest trapped
// drivers write and verify their windows (src/bench/flood/scenario.ts): string reads of
// 64 KiB it never reads the replies of, a read over the per-access limit, 200 half first
// frames and 200 half 1 MiB frames, and 1000 simultaneous connects. The honest guests
// finish verified; the supervisor's RSS stays within the documented bound (PROTOCOL.md
// "Limits": per connection, src/channel/flow.ts memoryBound) plus a fixed allowance for
// garbage not collected yet; each flood shows the bound that stopped it. Throughput is
// `muxvisor bench --only flood`, not asserted here.

import { expect, it } from 'vitest';
import { ATA_PIO, runFlood } from '../src/bench/flood/scenario.ts';
import { DEFAULT_LIMITS, hardUnread, supervisorBound } from '../src/channel/flow.ts';
import { MAX_STRING_BYTES } from '../src/channel/messages.ts';
import { TRAP_LIB } from '../src/trap/user.ts';
import { missingFile, titled } from './helpers/requires.ts';

const missing = missingFile(ATA_PIO) ?? missingFile(TRAP_LIB);
/**
 * Memory that is not held but not returned yet: V8 frees Buffers when it collects them,
 * lazily (up to 64 MiB of them before it must), and its heap grows while the code warms up.
 * An unflooded run grows by about 25 MiB.
 */
const ALLOWANCE_MIB = 96;

it.skipIf(missing !== null)(titled('a flooding guest leaves the supervisor within its memory bound, and the honest guests verify', missing), { timeout: 180_000 }, async () => {
  const r = await runFlood({ honest: 2, sectors: 256, passes: 2, flood: true, reads: 100_000, halfFrames: 200, connects: 1000 });
  for (const h of r.honest) expect(h.ok, `${h.guest}: ${h.line}`).toBe(true);

  const byMode = Object.fromEntries(r.flood.map((f) => [f.mode as string, f]));
  // The read over the per-access limit closed its connection; the 64 KiB reads stopped being
  // read once their unread replies reached the bound (the flooder's writes block).
  expect(byMode.big).toMatchObject({ ready: true, closedBySupervisor: true });
  expect(byMode.reads).toMatchObject({ ready: true, blocked: true });
  expect(byMode.connects).toMatchObject({ ready: true, connects: 1000, refused: 0 });
  const s = r.stats!;
  const mallory = s.guests.find((g) => g.guest === 'mallory')!;
  expect(mallory.denials).toBeLessThanOrEqual(Math.ceil(hardUnread(DEFAULT_LIMITS) / MAX_STRING_BYTES) + DEFAULT_LIMITS.maxInflight);
  expect(s.protocolErrors.malformed).toBeGreaterThanOrEqual(1);
  // The 1 MiB frames that were read: over the first frame's 8 KiB (others were closed unread).
  expect(s.protocolErrors.oversized).toBeGreaterThan(0);
  expect(s.channel['readStopped.unread']).toBeGreaterThanOrEqual(1);
  expect(s.channel.helloEvicted).toBeGreaterThan(0);

  // Three guests were connected (two honest, one hostile), and any number of other connections.
  const boundKiB = supervisorBound(3) / 1024 + ALLOWANCE_MIB * 1024;
  const grownKiB = r.rss.maxKiB - r.rss.beforeKiB;
  console.log(`flood: supervisor RSS ${Math.round(r.rss.beforeKiB / 1024)} -> max ${Math.round(r.rss.maxKiB / 1024)} MiB (+${Math.round(grownKiB / 1024)}; bound +${Math.round(boundKiB / 1024)})`);
  expect(grownKiB).toBeLessThanOrEqual(boundKiB);
});
