// The disk demo: N scripted guest drivers share one ATA disk through the MUX, each in its
// own partition window, each verifying what it reads. Backends: our ATA model on a raw image
// file (`model`), our ATA model on a real nbdkit export of that file (`nbd`), or QEMU's own
// IDE over qtest (`qemu`).

import { closeSync, existsSync, mkdtempSync, openSync, ftruncateSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/load.ts';
import type { Logger } from '../log.ts';
import { silentLogger } from '../log.ts';
import { Supervisor } from '../supervisor.ts';
import { muxRouterFactory } from '../mux/router-factory.ts';
import { startNbdkit, type NbdkitServer } from '../backends/nbdkit-server.ts';
import { AtaDriver } from '../guests/ata-driver.ts';
import { deviceSummary, type DemoSummary } from './summary.ts';
import { type DeviceLive, devicesLive } from './live-view.ts';
import { runWorkload, type TransferMode, type WorkloadProgress, type WorkloadResult } from '../guests/ata-workload.ts';
import { policyConfigOf } from '../mux/policy.ts';
import { AccessLog } from '../log/access-log.ts';

export type DiskBackend = 'model' | 'nbd' | 'qemu';

export interface DiskDemoOptions {
  guests: number;
  seconds: number;
  policy: string;
  backend: DiskBackend;
  image?: string;
  /** Image size when the demo creates it. */
  sizeMiB?: number;
  mode?: TransferMode;
  logger?: Logger;
  seed?: number;
  /** Called a few times a second with every guest's progress and the devices' owner, chart state and switches. */
  onProgress?: (p: WorkloadProgress[], elapsed: number, devices: DeviceLive[]) => void;
  /** Stop after this many operations per guest (bench); default: run for `seconds`. */
  maxOps?: number;
  /** Largest transfer in sectors. */
  maxSectors?: number;
  /** Record every access and MUX event here (src/log/: .jsonl or .mpk). */
  accessLog?: string;
}

export type { DemoDeviceSummary, DemoGuestSummary, DemoSummary } from './summary.ts';

export interface DiskDemoResult {
  summary: DemoSummary;
  results: WorkloadResult[];
  elapsedNs: number;
  backend: DiskBackend;
  image: string;
}

const DMA_BASE = 0x10_0000; // each guest's DMA memory: 1 MiB at bus address 1 MiB
const DMA_BYTES = 0x4_0000;

function makeImage(path: string, sizeMiB: number): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, sizeMiB * 1024 * 1024); // sparse: reads as zeros
  } finally {
    closeSync(fd);
  }
}

/** Run the demo to the end and return its summary (the CLI prints it). */
export async function runDiskDemo(opts: DiskDemoOptions): Promise<DiskDemoResult> {
  const log = opts.logger ?? silentLogger;
  const tmp = mkdtempSync(join(tmpdir(), 'muxvisor-demo-'));
  let nbd: NbdkitServer | null = null;
  let sup: Supervisor | null = null;
  const accessLog = opts.accessLog !== undefined ? new AccessLog(opts.accessLog) : undefined;
  try {
    const image = opts.image ?? join(tmp, 'disk.img');
    if (!existsSync(image)) makeImage(image, opts.sizeMiB ?? 64);
    const sectors = Math.floor(statSync(image).size / 512);
    let device: Record<string, unknown>;
    if (opts.backend === 'qemu') {
      device = { id: 'disk0', kind: 'qemu-ide', backend: { type: 'qemu', image } };
    } else if (opts.backend === 'nbd') {
      nbd = await startNbdkit(['file', image]);
      device = { id: 'disk0', kind: 'ata', backend: { type: 'nbd', socket: nbd.socket } };
    } else {
      device = { id: 'disk0', kind: 'ata', backend: { type: 'file', path: image } };
    }
    device.policy = policyConfigOf(opts.policy);
    const part = Math.floor(sectors / opts.guests);
    const names = Array.from({ length: opts.guests }, (_, i) => `guest${i + 1}`);
    const config = parseConfig(
      {
        devices: [device],
        guests: names.map((name, i) => ({
          name,
          run: { type: 'scripted', driver: 'ata' },
          grants: [{ device: 'disk0', window: { startLba: i * part, sectors: part } }],
        })),
      },
      'demo config',
    );
    sup = new Supervisor({ config, logger: log, accessLog, createRouter: await muxRouterFactory(config, { logger: log, recorder: accessLog }) });
    await sup.start();
    await accessLog?.start(sup);

    const started = process.hrtime.bigint();
    const deadline = Date.now() + opts.seconds * 1000;
    const progress: WorkloadProgress[] = names.map((guest) => ({ guest, ops: 0, bytes: 0, errors: 0, mismatches: 0, sectors: part }));
    const devices = (): DeviceLive[] => devicesLive(sup!.stats().devices); // sup was set above
    const ticker = opts.onProgress
      ? setInterval(() => opts.onProgress!(progress, Number(process.hrtime.bigint() - started) / 1e9, devices()), 250)
      : null;
    const mode = opts.mode ?? 'mixed';
    const results = await Promise.all(
      names.map(async (name, i) => {
        const bytes = new Uint8Array(DMA_BYTES);
        const guest = sup!.attachLocalGuest(name, { memory: { base: DMA_BASE, bytes } });
        const driver = new AtaDriver(guest, { base: DMA_BASE, buf: bytes });
        const hasBm = await driver.probePci();
        if (mode !== 'pio' && !hasBm) throw new Error(`${name}: no PIIX bus-master function in its PCI scan`);
        await driver.identify();
        return runWorkload(driver, {
          guest: name,
          seed: (opts.seed ?? 1) * 1000 + i,
          mode,
          maxOps: opts.maxOps,
          until: opts.maxOps === undefined ? () => Date.now() >= deadline : undefined,
          maxSectors: opts.maxSectors ?? 16,
          flushEvery: 50,
          onProgress: (p) => {
            const changed = p.phase !== progress[i].phase;
            progress[i] = p;
            // A new phase (verifying at the end) is shown at once, not at the next tick.
            if (changed && ticker) opts.onProgress!(progress, Number(process.hrtime.bigint() - started) / 1e9, devices());
          },
        });
      }),
    );
    if (ticker) clearInterval(ticker);
    const elapsedNs = Number(process.hrtime.bigint() - started);
    opts.onProgress?.(results, elapsedNs / 1e9, devices());
    const summary: DemoSummary = {
      devices: [
        deviceSummary(
          sup,
          'disk0',
          results.map((r) => ({ guest: r.guest, ops: r.ops, bytes: r.bytes, errors: r.errors + r.mismatches, verified: r.verified })),
        ),
      ],
    };
    return { summary, results, elapsedNs, backend: opts.backend, image };
  } finally {
    await sup?.close();
    await accessLog?.close();
    await nbd?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}
