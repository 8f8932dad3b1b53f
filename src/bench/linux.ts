// Linux guests (the guest kit, QEMU TCG unless MUXVISOR_BENCH_ACCEL=kvm) on muxvisor's shared
// disk, over x-pci-proxy-dev, against the same kernel and initramfs on QEMU's own IDE:
//   linux.disk.{muxvisor,qemu}.{read,write}MBps, linux.diskVsQemu(.read/.write): one guest,
//     DMA, sequential O_DIRECT 1 MiB requests (the kit's speed workload);
//   qemu.accessUs, qemu.localAccessUs, qemu.accessOverLocal: one 4-byte PIO data access, the
//     same workload in PIO (libata dma=0): the time of a read over the 4-byte accesses it took;
//   linux.sharingEfficiency: three guests at once, DMA, aggregate MB/s (all bytes written and
//     read over the span from the first guest's io=start to the last one's io=end, as the host
//     sees their consoles) over that of one guest measured the same way;
//   linux.bootMs.{muxvisor,qemu}: guest uptime at /init's first line;
//   linux.netVsQemu and linux.net.*: TCP throughput on muxvisor's shared NE2000 against QEMU's
//     own ne2k_pci (linux/net.ts; root).
// Needs qemu-system-x86_64 and the guest kit (npm run guest-kit); without them it says why.
// MUXVISOR_BENCH_LINUX=disk or =net runs only that part (default both).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, QEMU_BINARY } from '../backends/qtest.ts';
import { parseConfig } from '../config/load.ts';
import { parseKitConsole } from '../guests/linux-kit/console.ts';
import { launchGuests } from '../launch/guests.ts';
import { GUEST_KIT_DIR } from '../launch/qemu.ts';
import { muxRouterFactory } from '../mux/router-factory.ts';
import { Supervisor } from '../supervisor.ts';
import { runNet } from './linux/net.ts';

const MIB = 1024 * 1024;
const accel = (): 'tcg' | 'kvm' => (process.env.MUXVISOR_BENCH_ACCEL === 'kvm' ? 'kvm' : 'tcg');

interface SpeedRun {
  bytes: number;
  writeMs: number;
  readMs: number;
  initS: number;
  /** Host ms (performance.now) when the console showed the start of I/O and the result. */
  ioStart: number;
  ioEnd: number;
}

/** The speed workload's figures from a console, with the host times its lines were first seen. */
function parseSpeed(name: string, lines: string[], seen: Map<string, number>): SpeedRun {
  const run = parseKitConsole(lines);
  if (run.result?.[0] !== 'speed' || run.result[1] !== 'ok') throw new Error(`${name}: ${run.result?.join(' ') ?? 'no result line'}\n${lines.slice(-15).join('\n')}`);
  const word = (k: string): number => Number(run.result!.find((w) => w.startsWith(`${k}=`))?.slice(k.length + 1));
  const init = lines.find((l) => l.includes('MUXVISOR-INIT'));
  return {
    bytes: word('bytes'),
    writeMs: word('write_ms'),
    readMs: word('read_ms'),
    initS: Number(/uptime=([\d.]+)/.exec(init ?? '')?.[1]),
    ioStart: seen.get('io=start') ?? NaN,
    ioEnd: seen.get('io=end') ?? NaN,
  };
}

/** Watches console files: the host time each marker first showed in each. */
function watch(files: Map<string, string>, markers: string[]): { seen: Map<string, Map<string, number>>; stop: () => void } {
  const seen = new Map([...files.keys()].map((k) => [k, new Map<string, number>()]));
  const tick = (): void => {
    for (const [name, f] of files) {
      if (!existsSync(f)) continue;
      const text = readFileSync(f, 'latin1');
      for (const m of markers) if (!seen.get(name)!.has(m) && text.includes(m)) seen.get(name)!.set(m, performance.now());
    }
  };
  const t = setInterval(tick, 20);
  return { seen, stop: () => (clearInterval(t), tick()) };
}

/** `n` kit guests running the speed workload at once on muxvisor's shared disk. */
async function onMuxvisor(dir: string, n: number, append: string, mib: number): Promise<SpeedRun[]> {
  const image = join(dir, 'mux.img');
  writeFileSync(image, '');
  truncateSync(image, n * mib * MIB);
  const names = Array.from({ length: n }, (_, i) => `bench${i + 1}`);
  const consoles = new Map(names.map((g) => [g, join(dir, `${g}.log`)]));
  for (const f of consoles.values()) rmSync(f, { force: true });
  const config = parseConfig(
    {
      socket: join(dir, 'mv.sock'),
      devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'file', path: image }, properties: { deadlineNs: 60e9 } }],
      guests: names.map((g, i) => ({
        name: g,
        run: { type: 'qemu', append: `${append} muxvisor.guest=${g}`, console: consoles.get(g)!, accel: accel() },
        grants: [{ device: 'disk0', window: { startLba: i * mib * 2048, sectors: mib * 2048 } }],
      })),
    },
    'linux bench config',
  );
  const sup = new Supervisor({ config, createRouter: await muxRouterFactory(config, {}), defaultAuth: null });
  const w = watch(consoles, ['io=start', 'io=end']);
  try {
    await sup.listen({ path: join(dir, 'mv.sock') });
    const launched = await launchGuests(sup, config, join(dir, 'mv.sock'), (await import('../log.ts')).silentLogger);
    const outcomes = await Promise.all(launched.map((l) => l.done));
    w.stop();
    for (const o of outcomes) if (!o.ok) throw new Error(`${o.guest} on muxvisor: ${o.detail}`);
    return names.map((g) => parseSpeed(g, readFileSync(consoles.get(g)!, 'latin1').replace(/\r/g, '').split('\n'), w.seen.get(g)!));
  } finally {
    w.stop();
    await sup.close();
  }
}

/** One kit guest running the speed workload on QEMU's own IDE (PIIX3), same kernel and initramfs. */
async function onQemu(dir: string, append: string, mib: number): Promise<SpeedRun> {
  const qemu = findBinary(QEMU_BINARY)!;
  const image = join(dir, 'local.img');
  writeFileSync(image, '');
  truncateSync(image, mib * MIB);
  const consolePath = join(dir, 'local.log');
  const lines: string[] = [];
  const seen = new Map<string, number>();
  const child = spawn(qemu, [
    '-nodefaults', '-display', 'none', '-no-reboot', '-accel', accel(), '-smp', '1', '-m', '256M',
    '-kernel', join(GUEST_KIT_DIR, 'bzImage'), '-initrd', join(GUEST_KIT_DIR, 'initramfs.cpio.gz'),
    '-append', `console=ttyS0 ${append} muxvisor.guest=local`, '-serial', 'stdio',
    '-drive', `file=${image},if=ide,format=raw`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let partial = '';
  child.stdout!.setEncoding('latin1').on('data', (s: string) => {
    const parts = (partial + s).replace(/\r/g, '').split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) {
      lines.push(l);
      for (const m of ['io=start', 'io=end']) if (!seen.has(m) && l.includes(m)) seen.set(m, performance.now());
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
  const code = await new Promise<number | null>((res) => child.once('close', res));
  clearTimeout(timer);
  writeFileSync(consolePath, lines.join('\n'));
  if (code !== 0) throw new Error(`QEMU's own IDE run exited ${code}`);
  return parseSpeed('local', lines, seen);
}

const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const round = (x: number, d = 3): number => Number(x.toFixed(d));

export async function run(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  if (!findBinary(QEMU_BINARY)) return { 'linux.skipped': `${QEMU_BINARY} not installed — apt-get install qemu-system-x86` };
  if (!existsSync(join(GUEST_KIT_DIR, 'bzImage'))) return { 'linux.skipped': 'the Linux guest kit is not built — npm run guest-kit' };
  const dir = mkdtempSync(join(tmpdir(), 'muxvisor-bench-linux-'));
  const dmaMib = opts.quick ? 16 : 48;
  const pioMib = 1;
  const out: Record<string, unknown> = {};
  const parts = (process.env.MUXVISOR_BENCH_LINUX ?? 'disk,net').split(',');
  try {
    if (parts.includes('disk')) Object.assign(out, await runDisk(dir, opts, dmaMib, pioMib));
    if (parts.includes('net')) {
      try {
        Object.assign(out, await runNet(dir, opts));
      } catch (e) {
        out['linux.net.error'] = (e as Error).message; // the disk figures stand
      }
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runDisk(dir: string, opts: { quick: boolean }, dmaMib: number, pioMib: number): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const dma = `muxvisor.workload=speed muxvisor.mib=${dmaMib} muxvisor.bskib=1024`;
  const pio = `muxvisor.workload=speed muxvisor.mib=${pioMib} muxvisor.bskib=128 muxvisor.pio=1`;
  // One guest, DMA: muxvisor against QEMU's own IDE.
  const [mux] = await onMuxvisor(dir, 1, dma, dmaMib + 1);
  const local = await onQemu(dir, dma, dmaMib + 1);
  const r = { read: mbps(mux.bytes, mux.readMs) / mbps(local.bytes, local.readMs), write: mbps(mux.bytes, mux.writeMs) / mbps(local.bytes, local.writeMs) };
  Object.assign(out, {
    'linux.disk.muxvisor.readMBps': round(mbps(mux.bytes, mux.readMs), 2),
    'linux.disk.muxvisor.writeMBps': round(mbps(mux.bytes, mux.writeMs), 2),
    'linux.disk.qemu.readMBps': round(mbps(local.bytes, local.readMs), 2),
    'linux.disk.qemu.writeMBps': round(mbps(local.bytes, local.writeMs), 2),
    'linux.diskVsQemu.read': round(r.read),
    'linux.diskVsQemu.write': round(r.write),
    'linux.diskVsQemu': round(Math.sqrt(r.read * r.write)),
    'linux.bootMs.muxvisor': Math.round(mux.initS * 1000),
    'linux.bootMs.qemu': Math.round(local.initS * 1000),
  });
  // One guest, PIO: the cost of one 4-byte data access (the read phase: bytes/4 accesses).
  const [muxPio] = await onMuxvisor(dir, 1, pio, pioMib + 1);
  const localPio = await onQemu(dir, pio, pioMib + 1);
  const accessUs = (s: SpeedRun): number => (s.readMs * 1000) / (s.bytes / 4);
  Object.assign(out, {
    'qemu.accessUs': round(accessUs(muxPio), 2),
    'qemu.localAccessUs': round(accessUs(localPio), 2),
    'qemu.accessOverLocal': round(accessUs(muxPio) / accessUs(localPio), 1),
  });
  // Sharing: one guest alone, then three at once, each timed from the host by its console.
  const aggregate = (runs: SpeedRun[]): number => {
    const start = Math.min(...runs.map((s) => s.ioStart));
    const end = Math.max(...runs.map((s) => s.ioEnd));
    return runs.reduce((a, s) => a + 2 * s.bytes, 0) / 1e6 / ((end - start) / 1000);
  };
  const one = aggregate([mux]);
  const three = aggregate(await onMuxvisor(dir, 3, dma, dmaMib + 1));
  Object.assign(out, {
    'linux.aggregateMBps.1': round(one, 2),
    'linux.aggregateMBps.3': round(three, 2),
    'linux.sharingEfficiency': round(three / one),
  });
  return out;
}
