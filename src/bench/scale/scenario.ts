// One scale run: N scripted ATA guests share one model-backed disk through the MUX (the
// supervisor's in-process guests, round-robin), each in its own partition window running the
// verifying random read/write workload for a fixed time. Every guest probes and identifies the
// disk first; the timed window starts when all are ready, so setup does not eat into it.
//
// What it measures: bytes each guest moved in the window (its service), the longest any
// guest access waited for its answer (a held access waits for the device), the MUX's longest
// unsafe span and switches, and the process RSS at the end of the window.

import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Access, Reply } from '../../access.ts';
import { parseConfig } from '../../config/load.ts';
import { AtaDriver } from '../../guests/ata-driver.ts';
import { runWorkload } from '../../guests/ata-workload.ts';
import type { GuestPort } from '../../guests/port.ts';
import { silentLogger } from '../../log.ts';
import type { MuxEngine } from '../../mux/engine.ts';
import { muxRouterFactory } from '../../mux/router-factory.ts';
import { Supervisor } from '../../supervisor.ts';

export interface ScaleRunOptions {
  guests: number;
  seconds: number;
  /** Image size; each guest gets an equal window of it. */
  sizeMiB?: number;
  seed?: number;
  /** Called when the timed window opens and when it closes (a profiler's start and stop). */
  onWindow?: (phase: 'open' | 'close') => void;
}

export interface ScaleGuestResult {
  guest: string;
  /** Bytes moved in the timed window. */
  bytes: number;
  ops: number;
  /** Its workload verified everything it read and, at the end, everything it wrote. */
  verified: boolean;
  firstError?: string;
  /** The longest one of its accesses waited for an answer in the window (ms). */
  longestWaitMs: number;
  /** Device time the MUX gave it in the window (ms). */
  deviceMs: number;
}

export interface ScaleRunResult {
  guests: ScaleGuestResult[];
  /** Length of the timed window (s), measured. */
  seconds: number;
  /** Process RSS at the end of the window (MiB): supervisor, MUX, device and the in-process guests. */
  rssMiB: number;
  /** CPU time the process used in the window (ms, user + system). */
  cpuMs: number;
  switches: number;
  unsafeSwitches: number;
  maxUnsafeNs: number;
}

const DMA_BASE = 0x10_0000;
// PRD table at 0, data at 4 KiB, at most 16 sectors per transfer: 12 KiB; 16 KiB each.
const DMA_BYTES = 0x4000;
const MAX_SECTORS = 16;

/** A guest port that notes how long each access waited for its answer, while `timing()`. */
function timedPort(port: GuestPort, timing: () => boolean, out: { longestMs: number }): GuestPort {
  return {
    onIrq: (cb) => port.onIrq(cb),
    access: (acc: Access): Promise<Reply> => {
      if (!timing()) return port.access(acc);
      const t0 = performance.now();
      return port.access(acc).then((r) => {
        const ms = performance.now() - t0;
        if (ms > out.longestMs) out.longestMs = ms;
        return r;
      });
    },
  };
}

export async function runScale(opts: ScaleRunOptions): Promise<ScaleRunResult> {
  const tmp = mkdtempSync(join(tmpdir(), 'muxvisor-scale-'));
  let sup: Supervisor | null = null;
  try {
    const image = join(tmp, 'disk.img');
    const sizeMiB = opts.sizeMiB ?? 64;
    const fd = openSync(image, 'w');
    try {
      ftruncateSync(fd, sizeMiB * 1024 * 1024); // sparse: reads as zeros
    } finally {
      closeSync(fd);
    }
    const part = Math.floor((sizeMiB * 2048) / opts.guests);
    if (part < MAX_SECTORS) throw new Error(`scale: ${opts.guests} guests leave ${part} sectors each of a ${sizeMiB} MiB disk (need ${MAX_SECTORS})`);
    const names = Array.from({ length: opts.guests }, (_, i) => `guest${i + 1}`);
    const config = parseConfig(
      {
        devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'file', path: image }, policy: { name: 'round-robin' } }],
        guests: names.map((name, i) => ({
          name,
          run: { type: 'scripted', driver: 'ata' },
          grants: [{ device: 'disk0', window: { startLba: i * part, sectors: part } }],
        })),
      },
      'scale config',
    );
    let engine: MuxEngine | null = null;
    sup = new Supervisor({
      config,
      logger: silentLogger,
      createRouter: await muxRouterFactory(config, { logger: silentLogger, onEngine: (_id, e) => (engine = e) }),
    });
    await sup.start();

    let timing = false;
    const drivers = await Promise.all(
      names.map(async (name) => {
        const bytes = new Uint8Array(DMA_BYTES);
        const waits = { longestMs: 0 };
        const guest = sup!.attachLocalGuest(name, { memory: { base: DMA_BASE, bytes } });
        const driver = new AtaDriver(timedPort(guest, () => timing, waits), { base: DMA_BASE, buf: bytes });
        if (!(await driver.probePci())) throw new Error(`scale: ${name} found no PIIX bus-master function`);
        await driver.identify();
        return { name, driver, waits };
      }),
    );
    const mux = engine as MuxEngine | null;
    if (!mux) throw new Error('scale: disk0 got no MUX');

    // The window: every guest starts now and stops starting operations at the deadline.
    const t0 = performance.now();
    const deadline = t0 + opts.seconds * 1000;
    let windowMs = 0;
    const usedNs = (): Map<string, number> => new Map(mux.stats().perGuest.map((g) => [g.guest, g.usedNs]));
    const used0 = usedNs();
    let used1 = used0;
    const cpu0 = process.cpuUsage();
    let cpu = cpu0;
    let rssMiB = 0;
    timing = true;
    opts.onWindow?.('open');
    const until = (): boolean => {
      if (!timing) return true;
      if (performance.now() < deadline) return false;
      // The first guest past the deadline closes the window for everyone.
      timing = false;
      windowMs = performance.now() - t0;
      rssMiB = process.memoryUsage.rss() / 2 ** 20;
      cpu = process.cpuUsage(cpu0);
      used1 = usedNs();
      opts.onWindow?.('close');
      return true;
    };
    const results = await Promise.all(
      drivers.map(({ name, driver }, i) =>
        runWorkload(driver, { guest: name, seed: (opts.seed ?? 1) * 100_000 + i, mode: 'mixed', until, maxSectors: MAX_SECTORS, flushEvery: 50 }),
      ),
    );
    const st = mux.stats();
    return {
      guests: results.map((r, i) => ({
        guest: r.guest,
        bytes: r.bytes,
        ops: r.ops,
        verified: r.verified,
        firstError: r.firstError,
        longestWaitMs: drivers[i].waits.longestMs,
        deviceMs: ((used1.get(r.guest) ?? 0) - (used0.get(r.guest) ?? 0)) / 1e6,
      })),
      seconds: windowMs / 1000,
      rssMiB,
      cpuMs: (cpu.user + cpu.system) / 1000,
      switches: st.switches,
      unsafeSwitches: st.unsafeSwitches,
      maxUnsafeNs: st.maxUnsafeNs,
    };
  } finally {
    await sup?.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Jain's fairness index of per-guest service: (Σx)² / (n·Σx²); 1 when all are equal, 1/n when one gets all. */
export function jainIndex(xs: readonly number[]): number {
  const sum = xs.reduce((a, x) => a + x, 0);
  const sq = xs.reduce((a, x) => a + x * x, 0);
  return sq === 0 ? 1 : (sum * sum) / (xs.length * sq);
}
