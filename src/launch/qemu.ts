// `run: {type: 'qemu', ...}`: an unmodified guest OS in its own QEMU, its disk (the granted
// ATA device) or its NIC (a granted ne2k card, shared by the NIC router) served over x-pci-proxy-dev (src/trap/qemu-guest/linux-guest.ts). Defaults: the
// Linux guest kit (native/linux-guest/build), TCG, 1 vCPU, 256 MiB, the console in
// GUEST.console.log beside the socket. The guest succeeds when its QEMU powered off cleanly
// and, for the kit, printed `MUXVISOR-RESULT ... ok`.

import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type GuestConfig, isDeviceGrant, type RunConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Supervisor } from '../supervisor.ts';
import type { GuestOutcome, LaunchedGuest } from './outcome.ts';

export const GUEST_KIT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../native/linux-guest/build');

type QemuRun = Extract<RunConfig, { type: 'qemu' }>;

/** Device kinds a guest QEMU can be given as its proxied PCI function (src/trap/mpqemu/pci-face.ts). */
const PRESENTABLE = new Set(['ata', 'ne2k', 'qemu-ne2k']);

export async function launchQemu(sup: Supervisor, g: GuestConfig, run: QemuRun, where: string, socket: string, log: Logger): Promise<LaunchedGuest> {
  const { startQemuGuest } = await import('../trap/qemu-guest/linux-guest.ts');
  const fail = (detail: string): LaunchedGuest => ({ name: g.name, done: Promise.resolve({ guest: g.name, how: 'qemu', ok: false, detail }), stop: () => {} });
  const presentable = g.grants.filter(isDeviceGrant).filter((gr) => PRESENTABLE.has(sup.device(gr.device)?.kind ?? ''));
  const deviceId = run.device ?? (presentable.length === 1 ? presentable[0].device : undefined);
  if (!deviceId) return fail(`${where}.run.device: name the device to present (the guest has ${presentable.length} grants of kinds ${[...PRESENTABLE].join('/')})`);
  const dev = sup.device(deviceId);
  if (!dev || !g.grants.some((gr) => isDeviceGrant(gr) && gr.device === deviceId)) return fail(`${where}.run.device: "${deviceId}" is not a device granted to ${g.name}`);
  if (!PRESENTABLE.has(dev.kind)) return fail(`${where}.run.device: "${deviceId}" is of kind ${dev.kind}; a guest QEMU can be given a device of kind ${[...PRESENTABLE].join(', ')}`);
  const kernel = run.kernel ?? join(GUEST_KIT_DIR, 'bzImage');
  const initrd = run.initrd ?? (run.kernel === undefined ? join(GUEST_KIT_DIR, 'initramfs.cpio.gz') : undefined);
  for (const f of [kernel, initrd]) if (f && !existsSync(f)) return fail(`${f} is missing${run.kernel === undefined ? ' (npm run guest-kit builds the Linux guest kit)' : ''}`);
  const dir = socket.startsWith('tcp:') ? tmpdir() : dirname(resolve(socket));
  const logFile = run.console ?? join(dir, `${g.name}.console.log`);
  let handle;
  try {
    handle = startQemuGuest({
      name: g.name,
      attach: sup.attachLocalGuest.bind(sup),
      device: { id: deviceId, description: dev.description, ranges: dev.ranges },
      kernel,
      initrd,
      append: run.append,
      memMiB: run.memMiB,
      accel: run.accel,
      smp: run.smp,
      logFile,
      logger: log.child({ guest: g.name }),
    });
  } catch (e) {
    return fail((e as Error).message);
  }
  const done = handle.done.then((r): GuestOutcome => {
    // The kit's guests say how their workload went; another OS need not (its clean power-off is all).
    const resultOk = r.result === null ? run.kernel !== undefined : r.result[1] === 'ok';
    // A panicked kernel reboots, which QEMU's -no-reboot turns into a clean-looking exit.
    const panic = r.tail.find((l) => /Kernel panic - not syncing/.test(l));
    const ok = !panic && r.code === 0 && r.detach === 'bye' && resultOk;
    const secs = (ms: number | null): string => (ms === null ? '-' : (ms / 1000).toFixed(1));
    const detail = `${panic ? `kernel panic (${panic.trim().slice(0, 120)}), ` : ''}${r.signal ? `killed by ${r.signal}` : `exit ${r.code}`}${r.result ? `, ${r.result.join(' ')}` : ', no result line'}; init ${secs(r.initMs)} s, done ${secs(r.totalMs)} s; console ${logFile}${r.stderr.trim() ? `; qemu: ${r.stderr.trim().slice(-300)}` : ''}`;
    return { guest: g.name, how: 'qemu', ok, detail };
  });
  return { name: g.name, done, stop: () => handle.stop() };
}
