// N KVM guests (the bare-metal ATA driver, unmodified) share one ATA disk through the MUX,
// each verifying its whole partition window: the body of `muxvisor demo --trap kvm`.
// Returns the same summary shape as the scripted disk demo (src/demo/disk-demo.ts).

import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNbdkit, type NbdkitServer } from '../backends/nbdkit-server.ts';
import { parseConfig } from '../config/load.ts';
import type { DemoSummary, DiskBackend } from './disk-demo.ts';
import { deviceSummary } from './summary.ts';
import { type Logger, silentLogger } from '../log.ts';
import { muxRouterFactory } from '../mux/router-factory.ts';
import { Supervisor } from '../supervisor.ts';
import { type KvmGuestResult, KvmRunnerError, kvmUnavailableReason, runKvmGuest } from '../trap/kvm.ts';
import { policyConfigOf } from '../mux/policy.ts';
import { KvmGuestPhases } from './kvm-live.ts';
import { type DeviceLive, type GuestLive, devicesLive } from './live-view.ts';

export interface KvmDiskOptions {
  guests: number;
  backend?: DiskBackend;
  /** pio, dma, or mixed (guests alternate; odd ones sleep in HLT until IRQ 14). */
  mode?: 'pio' | 'dma' | 'mixed';
  policy?: string;
  /** Raw image to share; a temporary one sized for the windows when absent. */
  image?: string;
  /**
   * Sectors per guest window; each guest writes and verifies all of it. PIO costs one exit
   * per word written, so the default is small: 256 (PIO/mixed) or 2048 (DMA).
   */
  windowSectors?: number;
  /** Helper processes over the channel socket instead of the in-process addon. */
  helper?: boolean;
  logger?: Logger;
  timeoutMs?: number;
  onLine?: (guest: string, line: string) => void;
  /** Called a few times a second with the guests' phases and the devices' owner, chart state and switches. */
  onProgress?: (guests: GuestLive[], elapsed: number, devices: DeviceLive[]) => void;
}

export interface KvmDiskResult {
  summary: DemoSummary;
  results: KvmGuestResult[];
  elapsedNs: number;
  backend: DiskBackend;
  image: string;
}

function guestMode(mode: KvmDiskOptions['mode'], i: number): string {
  const m = mode === 'mixed' || mode === undefined ? (i % 2 === 0 ? 'pio' : 'dma') : mode;
  return m === 'dma' && i % 2 === 1 ? 'mode=dma irq=1' : `mode=${m}`;
}

export async function runKvmDisk(opts: KvmDiskOptions): Promise<KvmDiskResult> {
  const why = kvmUnavailableReason();
  if (why) throw new KvmRunnerError(why);
  const log = opts.logger ?? silentLogger;
  const backend = opts.backend ?? 'model';
  const window = opts.windowSectors ?? (opts.mode === 'dma' ? 2048 : 256);
  const tmp = mkdtempSync(join(tmpdir(), 'muxvisor-kvm-demo-'));
  let nbd: NbdkitServer | null = null;
  let sup: Supervisor | null = null;
  let ticker: NodeJS.Timeout | null = null;
  try {
    const image = opts.image ?? join(tmp, 'disk.img');
    if (!existsSync(image)) {
      const fd = openSync(image, 'w');
      try {
        ftruncateSync(fd, opts.guests * window * 512);
      } finally {
        closeSync(fd);
      }
    }
    const sectors = Math.floor(statSync(image).size / 512);
    if (sectors < opts.guests * window) throw new KvmRunnerError(`image ${image} has ${sectors} sectors; ${opts.guests} windows of ${window} need ${opts.guests * window}`);
    let device: Record<string, unknown>;
    if (backend === 'qemu') device = { id: 'disk0', kind: 'qemu-ide', backend: { type: 'qemu', image } };
    else if (backend === 'nbd') {
      nbd = await startNbdkit(['file', image]);
      device = { id: 'disk0', kind: 'ata', backend: { type: 'nbd', socket: nbd.socket } };
    } else device = { id: 'disk0', kind: 'ata', backend: { type: 'file', path: image } };
    device.policy = policyConfigOf(opts.policy ?? 'round-robin');
    const names = Array.from({ length: opts.guests }, (_, i) => `kvm${i + 1}`);
    const socket = join(tmp, 'muxvisor.sock');
    const config = parseConfig(
      { socket, devices: [device], guests: names.map((name, i) => ({ name, grants: [{ device: 'disk0', window: { startLba: i * window, sectors: window } }] })) },
      'kvm demo config',
    );
    sup = new Supervisor({ config, logger: log, createRouter: await muxRouterFactory(config, { logger: log }) });
    await sup.listen({ path: socket });
    const attach = opts.helper ? undefined : sup.attachLocalGuest.bind(sup);
    const started = process.hrtime.bigint();
    const phases = new KvmGuestPhases(names);
    const tick = (): void => {
      const st = sup!.stats(); // sup was set above
      const accesses = new Map(st.guests.map((g) => [g.guest, g.accesses]));
      opts.onProgress!(phases.live(accesses), Number(process.hrtime.bigint() - started) / 1e9, devicesLive(st.devices));
    };
    ticker = opts.onProgress ? setInterval(tick, 250) : null;
    const results = await Promise.all(
      names.map((name, i) =>
        runKvmGuest({
          name,
          attach,
          connect: socket,
          cmdline: `${guestMode(opts.mode, i)} tag=${name}`,
          timeoutMs: opts.timeoutMs ?? 300_000,
          onLine: (line) => {
            phases.line(name, line);
            opts.onLine?.(name, line);
          },
        }),
      ),
    );
    clearInterval(ticker ?? undefined);
    if (opts.onProgress) tick();
    const elapsedNs = Number(process.hrtime.bigint() - started);
    const summary: DemoSummary = {
      devices: [
        deviceSummary(
          sup,
          'disk0',
          results.map((r) => ({
            guest: r.name,
            ops: r.counters?.forwarded ?? 0,
            bytes: r.verified ? Number(r.result?.fields.bytes ?? 0) : 0,
            errors: r.verified ? 0 : 1,
            verified: r.verified,
          })),
        ),
      ],
    };
    return { summary, results, elapsedNs, backend, image };
  } finally {
    clearInterval(ticker ?? undefined);
    await sup?.close();
    await nbd?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}
