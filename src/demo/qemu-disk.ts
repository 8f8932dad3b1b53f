// N unmodified Linux guests (the guest kit's kernel and initramfs, each in its own QEMU) share
// one ATA disk through the MUX, served over QEMU's x-pci-proxy-dev: the body of `muxvisor demo
// --trap qemu`. Each guest sees a whole disk of its window's size, makes an ext4 file system on
// it, writes files of known content with a manifest, checks them with fsck, mounts again and
// verifies, writes and verifies a raw pattern after the file system, and powers off. Then the
// host checks each window of the image (src/guests/linux-kit/window-check.ts). Returns the
// same summary shape as the other demos.

import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/load.ts';
import { kitPhase, parseKitConsole } from '../guests/linux-kit/console.ts';
import { checkKitWindow } from '../guests/linux-kit/window-check.ts';
import { GUEST_KIT_DIR } from '../launch/qemu.ts';
import { launchGuests } from '../launch/guests.ts';
import type { GuestOutcome } from '../launch/outcome.ts';
import { type Logger, silentLogger } from '../log.ts';
import { policyConfigOf } from '../mux/policy.ts';
import { muxRouterFactory } from '../mux/router-factory.ts';
import { Supervisor } from '../supervisor.ts';
import { type DeviceLive, type GuestLive, devicesLive } from './live-view.ts';
import { type DemoSummary, deviceSummary } from './summary.ts';

const MIB = 1024 * 1024;
const SECTORS_PER_MIB = 2048;

export interface QemuDiskOptions {
  guests: number;
  /** dma: as the driver negotiates (MWDMA2); pio: libata dma=0; mixed: the last guest in PIO. */
  mode?: 'pio' | 'dma' | 'mixed';
  policy?: string;
  /** Raw image to share (at least the windows' size); a temporary sparse one when absent. */
  image?: string;
  accel?: 'tcg' | 'kvm';
  logger?: Logger;
  /** Called a few times a second with the guests' phases and the device's owner, chart state and switches. */
  onProgress?: (guests: GuestLive[], elapsed: number, devices: DeviceLive[]) => void;
  /** Keep the run folder (consoles, config) instead of removing it; its path is in the result. */
  keep?: boolean;
}

export interface QemuGuestPlan {
  name: string;
  pio: boolean;
  /** The window: its first sector in the image and its size in MiB. */
  startLba: number;
  mib: number;
  files: number;
}

export interface QemuDiskResult {
  summary: DemoSummary;
  guests: (QemuGuestPlan & { outcome: GuestOutcome; problems: string[]; console: string })[];
  elapsedNs: number;
  image: string;
  /** The run folder (consoles, config); removed unless `keep`. */
  dir: string;
}

/**
 * The windows: a DMA guest gets 64 MiB and 8 files (about 7 MiB); a PIO guest 16 MiB and one
 * file, since every 4-byte PIO access is a message round trip through the proxy (about 20 s a MiB).
 */
export function planQemuGuests(n: number, mode: QemuDiskOptions['mode'] = 'mixed'): QemuGuestPlan[] {
  let lba = 0;
  return Array.from({ length: n }, (_, i) => {
    const pio = mode === 'pio' || (mode === 'mixed' && n > 1 && i === n - 1);
    const mib = pio ? 16 : 64;
    const g = { name: `linux${i + 1}`, pio, startLba: lba, mib, files: pio ? 1 : 8 };
    lba += mib * SECTORS_PER_MIB;
    return g;
  });
}

function phaseOf(lines: readonly string[]): GuestLive['phase'] {
  const p = kitPhase(lines);
  if (p === 'failed') return 'FAILED';
  if (p === 'verify') return 'verifying';
  if (p === 'done') return 'verifying'; // the host checks its window next
  if (p === 'mkfs' || p === 'files' || p === 'raw') return 'running';
  return 'starting';
}

function consoleOf(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'latin1').replace(/\r/g, '').split('\n') : [];
}

export async function runQemuDisk(opts: QemuDiskOptions): Promise<QemuDiskResult> {
  const log = opts.logger ?? silentLogger;
  for (const f of ['bzImage', 'initramfs.cpio.gz']) {
    if (!existsSync(join(GUEST_KIT_DIR, f))) throw new Error(`the Linux guest kit is not built (${join(GUEST_KIT_DIR, f)} is missing): npm run guest-kit builds it`);
  }
  const plan = planQemuGuests(opts.guests, opts.mode);
  const totalSectors = plan.reduce((s, g) => s + g.mib * SECTORS_PER_MIB, 0);
  const dir = mkdtempSync(join(tmpdir(), 'muxvisor-qemu-demo-'));
  let sup: Supervisor | null = null;
  let ticker: NodeJS.Timeout | null = null;
  try {
    const image = opts.image ?? join(dir, 'shared.img');
    if (!existsSync(image)) {
      const fd = openSync(image, 'w');
      try {
        ftruncateSync(fd, totalSectors * 512);
      } finally {
        closeSync(fd);
      }
    }
    const sectors = Math.floor(statSync(image).size / 512);
    if (sectors < totalSectors) throw new Error(`image ${image} has ${sectors} sectors; the ${plan.length} windows need ${totalSectors}`);
    const socket = join(dir, 'muxvisor.sock');
    const consolePath = (name: string): string => join(dir, `${name}.console.log`);
    const config = parseConfig(
      {
        socket,
        devices: [
          {
            id: 'disk0',
            kind: 'ata',
            backend: { type: 'file', path: image },
            policy: policyConfigOf(opts.policy ?? 'round-robin'),
            // A PIO command through the proxy takes seconds out of a safe state: not a stall.
            properties: { deadlineNs: 60e9 },
          },
        ],
        guests: plan.map((g) => ({
          name: g.name,
          run: {
            type: 'qemu',
            append: `muxvisor.workload=disk muxvisor.guest=${g.name} muxvisor.files=${g.files}${g.pio ? ' muxvisor.pio=1' : ''}`,
            console: consolePath(g.name),
            ...(opts.accel ? { accel: opts.accel } : {}),
          },
          grants: [{ device: 'disk0', window: { startLba: g.startLba, sectors: g.mib * SECTORS_PER_MIB } }],
        })),
      },
      'qemu demo config',
    );
    sup = new Supervisor({ config, logger: log, createRouter: await muxRouterFactory(config, { logger: log }), defaultAuth: null });
    await sup.listen({ path: socket });
    const started = process.hrtime.bigint();
    const launched = await launchGuests(sup, config, socket, log);
    const finished = new Map<string, GuestOutcome>();
    for (const l of launched) void l.done.then((o) => finished.set(o.guest, o));
    const live = (): GuestLive[] => {
      const st = sup!.stats(); // set above
      const accesses = new Map(st.guests.map((g) => [g.guest, g.accesses]));
      return plan.map((g) => {
        const lines = consoleOf(consolePath(g.name));
        const run = parseKitConsole(lines);
        const done = finished.get(g.name);
        const phase = done && !done.ok ? 'FAILED' : phaseOf(lines);
        const bytes = Number(run.result?.find((w) => w.startsWith('bytes='))?.slice(6) ?? 0);
        return { guest: g.name, ops: accesses.get(g.name) ?? 0, bytes, errors: phase === 'FAILED' ? 1 : 0, phase };
      });
    };
    const tick = (): void => opts.onProgress!(live(), Number(process.hrtime.bigint() - started) / 1e9, devicesLive(sup!.stats().devices));
    ticker = opts.onProgress ? setInterval(tick, 250) : null;
    const outcomes = await Promise.all(launched.map((l) => l.done));
    const elapsedNs = Number(process.hrtime.bigint() - started);
    // The host's checks of every window, after the guests are gone.
    const guests = plan.map((g, i) => {
      const outcome = outcomes[i];
      const console = consolePath(g.name);
      const run = parseKitConsole(consoleOf(console));
      const problems = outcome.ok ? checkKitWindow({ image, offset: g.startLba * 512, bytes: g.mib * MIB, guest: g.name, files: g.files, run }) : [outcome.detail];
      return { ...g, outcome, problems, console };
    });
    if (ticker) clearInterval(ticker);
    if (opts.onProgress) {
      const view = live().map((l, i): GuestLive => ({ ...l, phase: guests[i].problems.length ? 'FAILED' : 'verified' }));
      opts.onProgress(view, elapsedNs / 1e9, devicesLive(sup.stats().devices));
    }
    const accesses = new Map(sup.stats().guests.map((s) => [s.guest, s.accesses]));
    const summary: DemoSummary = {
      devices: [
        deviceSummary(
          sup,
          'disk0',
          guests.map((g) => {
            const bytes = Number(parseKitConsole(consoleOf(g.console)).result?.find((w) => w.startsWith('bytes='))?.slice(6) ?? 0);
            return { guest: g.name, ops: accesses.get(g.name) ?? 0, bytes, errors: g.problems.length, verified: g.problems.length === 0 };
          }),
        ),
      ],
    };
    return { summary, guests, elapsedNs, image, dir };
  } finally {
    if (ticker) clearInterval(ticker);
    await sup?.close();
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}
