// An unmodified guest OS (a Linux kernel and initramfs) in its own QEMU, sharing a muxvisor
// device (the ATA disk, or the NE2000 through the NIC router): the guest QEMU runs the CPUs
// (TCG here, KVM where the host has VT-x/AMD-V) and stands in for the device with
// x-pci-proxy-dev on one end of a socketpair (the function's face: mpqemu/pci-face.ts);
// muxvisor serves the other end (src/trap/mpqemu/) through a MUX port (mux-port.ts), so the guest is a MUX guest like
// any other. Its interrupt goes over the QEMU's private qtest socket (irq-pin.ts; under TCG
// the proxy's irqfd reaches nothing).
//
// Order matters (LINUX.md): the guest's QEMU reads the function's config space while it sets
// the device up, before it serves QMP or qtest, so the connection is attached before QEMU is
// spawned. QEMU's exit is the guest leaving: a clean poweroff detaches it ('bye'), anything
// else as a crash (the MUX cuts off a command in flight and resets the device).

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary } from '../../backends/qtest.ts';
import type { GuestMemory as LinkMemory } from '../../guest-link.ts';
import { type Logger, silentLogger } from '../../log.ts';
import type { LocalGuest, LocalGuestOptions } from '../../supervisor.ts';
import { GuestMemory } from '../mpqemu/guest-memory.ts';
import { MuxPortDevice, type PlacedRegion } from '../mpqemu/mux-port.ts';
import { mpqemuAddon } from '../mpqemu/native.ts';
import { pciFaceFor } from '../mpqemu/pci-face.ts';
import { type MpqemuConnection, MpqemuServer } from '../mpqemu/server.ts';
import { GuestIrqPin, QtestLine } from './irq-pin.ts';
import { QmpClient } from './qmp.ts';

/** The proxied function's id in the guest's QEMU. */
const PROXY_ID = 'mvdev';

export interface QemuGuestOptions {
  name: string;
  attach: (name: string, options: LocalGuestOptions) => LocalGuest;
  /** The shared device as the supervisor placed it (description and bus ranges): an ata or ne2k kind. */
  device: { id: string; description: import('../../device.ts').DeviceDescription; ranges: readonly PlacedRegion[] };
  kernel: string;
  initrd?: string;
  /** Kernel command line; `console=ttyS0` is put in front. */
  append?: string;
  memMiB?: number;
  accel?: 'tcg' | 'kvm';
  smp?: number;
  /** The console goes here (and to onLine). */
  logFile?: string;
  onLine?: (line: string) => void;
  server?: MpqemuServer;
  logger?: Logger;
}

export interface QemuGuestResult {
  name: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The words after MUXVISOR-RESULT, or null. */
  result: string[] | null;
  /** Host ms from spawn to /init's first line, and to QEMU's exit. */
  initMs: number | null;
  totalMs: number;
  /** The last console lines. */
  tail: string[];
  stderr: string;
  stats: MpqemuConnection['stats'];
  detach: 'bye' | 'crash' | 'disconnect';
}

export interface QemuGuestHandle {
  readonly name: string;
  readonly done: Promise<QemuGuestResult>;
  stop(): void;
}

/** The mpqemu RAM as the supervisor's DMA memory: bus addresses are guest physical addresses. */
function linkMemory(m: GuestMemory): LinkMemory {
  return { base: 0, size: Number.MAX_SAFE_INTEGER, read: (a, n) => m.read(a, n), write: (a, d) => m.write(a, d) };
}

export function startQemuGuest(o: QemuGuestOptions): QemuGuestHandle {
  const log = o.logger ?? silentLogger;
  const qemu = findBinary('qemu-system-x86_64');
  if (!qemu) throw new Error(`guest ${o.name}: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)`);
  const server = o.server ?? new MpqemuServer({ logger: log });
  const dir = mkdtempSync(join(tmpdir(), `muxvisor-qemu-${o.name}-`)); // 0700: qtest reaches all guest memory
  const memory = new GuestMemory();
  const face = pciFaceFor(o.device.description);
  const local = o.attach(o.name, { memory: linkMemory(memory) });
  let port: MuxPortDevice;
  try {
    port = new MuxPortDevice(face, o.device.ranges, local);
  } catch (e) {
    local.detach('bye');
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const [ours, theirs] = mpqemuAddon().socketpair();
  const conn = server.attach(ours, { name: o.name, device: port, memory, resetDevice: false });

  const mem = o.memMiB ?? 256;
  const args = [
    '-nodefaults', '-display', 'none', '-no-reboot',
    '-accel', o.accel ?? 'tcg', '-smp', String(o.smp ?? 1), '-m', `${mem}M`,
    '-object', `memory-backend-memfd,id=mem,size=${mem}M,share=on`,
    '-machine', 'pc,memory-backend=mem',
    '-kernel', o.kernel,
    ...(o.initrd ? ['-initrd', o.initrd] : []),
    '-append', `console=ttyS0 ${o.append ?? ''}`.trim(),
    '-serial', 'stdio',
    '-qtest', `unix:${join(dir, 'qtest.sock')},server=on,wait=off`, '-qtest-log', 'none',
    '-qmp', `unix:${join(dir, 'qmp.sock')},server=on,wait=off`,
    '-device', `x-pci-proxy-dev,id=${PROXY_ID},fd=3`,
  ];
  // QEMU dies with us (a supervisor killed hard leaves no guest running on a closed socket).
  const setpriv = findBinary('setpriv');
  const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'SIGKILL', qemu, ...args]] : [qemu, args];
  const t0 = performance.now();
  let child: ChildProcess;
  try {
    child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe', theirs] });
  } finally {
    mpqemuAddon().close(theirs); // QEMU holds its copy
  }
  const console_ = o.logFile ? createWriteStream(o.logFile) : null;
  const tail: string[] = [];
  let result: string[] | null = null;
  let initMs: number | null = null;
  let partial = '';
  const take = (line: string): void => {
    tail.push(line);
    if (tail.length > 80) tail.shift();
    if (initMs === null && line.includes('MUXVISOR-INIT')) initMs = performance.now() - t0;
    const r = /MUXVISOR-RESULT (.*)$/.exec(line);
    if (r) result = r[1].trim().split(/\s+/);
    o.onLine?.(line);
  };
  child.stdout!.setEncoding('latin1');
  child.stdout!.on('data', (chunk: string) => {
    console_?.write(chunk, 'latin1');
    const parts = (partial + chunk).replace(/\r/g, '').split('\n');
    partial = parts.pop() ?? '';
    parts.forEach(take);
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => (stderr = (stderr + s).slice(-4096)));

  // The interrupt pin, opened at the first level change (the GSI is known once the guest's
  // firmware and kernel routed the function's INTA); changes queue behind the opening.
  let qmp: QmpClient | null = null;
  let qtest: QtestLine | null = null;
  let pin: Promise<GuestIrqPin> | null = null;
  const openPin = async (): Promise<GuestIrqPin> => {
    qmp = await QmpClient.connect(join(dir, 'qmp.sock'));
    qtest = await QtestLine.connect(join(dir, 'qtest.sock'));
    const p = await GuestIrqPin.open(qmp, qtest, PROXY_ID);
    log.info({ guest: o.name, gsi: p.gsi }, 'guest interrupt pin open');
    return p;
  };
  let pinFailed = false;
  const unIrq = local.onIrq((_line, level) => {
    pin ??= openPin();
    const set = pin.then((p) => p.set(level));
    set.catch((err: unknown) => {
      if (pinFailed || exited) return;
      pinFailed = true; // logged once: the guest then runs without interrupts (its driver times out)
      log.error({ guest: o.name, err }, 'guest interrupt pin failed');
    });
    port.pinChanged(set);
  });

  let exited = false;
  let stopped = false;
  const done = new Promise<QemuGuestResult>((resolve) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (exited) return;
      exited = true;
      if (partial) take(partial);
      console_?.end();
      unIrq();
      const clean = code === 0 && !stopped;
      const detach = stopped ? 'disconnect' : clean ? 'bye' : 'crash';
      local.detach(detach);
      conn.close();
      (qmp as QmpClient | null)?.close();
      (qtest as QtestLine | null)?.close();
      rmSync(dir, { recursive: true, force: true });
      resolve({ name: o.name, code, signal, result, initMs, totalMs: performance.now() - t0, tail: [...tail], stderr, stats: { ...conn.stats }, detach });
    };
    child.once('error', (e) => {
      stderr += e.message;
      finish(null, null);
    });
    child.once('close', finish);
  });
  return {
    name: o.name,
    done,
    stop: () => {
      if (exited) return;
      stopped = true;
      child.kill('SIGTERM');
    },
  };
}
