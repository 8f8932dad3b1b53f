// TCP throughput of one Linux guest (the kit's net workload: busybox nc to a peer on the host
// and back, checksums compared) on muxvisor's shared NE2000 (x-pci-proxy-dev, the NIC router,
// the tap backend) against the same kernel and initramfs on QEMU's own ne2k_pci (-netdev tap),
// both TCG unless MUXVISOR_BENCH_ACCEL=kvm, each wire a TAP in a network namespace of its own
// where the peer runs (src/guests/linux-kit/net-host.ts):
//   linux.net.{muxvisor,qemu}.{up,down}MBps, linux.netVsQemu (geometric mean of the up and down
//   ratios), linux.net.kib (KiB each way).
// Needs root (ip netns, TAP); without it says why.

import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { findBinary, QEMU_BINARY } from '../../backends/qtest.ts';
import { parseConfig } from '../../config/load.ts';
import { parseKitConsole } from '../../guests/linux-kit/console.ts';
import { NetHost } from '../../guests/linux-kit/net-host.ts';
import { launchGuests } from '../../launch/guests.ts';
import { GUEST_KIT_DIR } from '../../launch/qemu.ts';
import { silentLogger } from '../../log.ts';
import { muxRouterFactory } from '../../mux/router-factory.ts';
import { Supervisor } from '../../supervisor.ts';

const accel = (): 'tcg' | 'kvm' => (process.env.MUXVISOR_BENCH_ACCEL === 'kvm' ? 'kvm' : 'tcg');
const MAC = '52:54:00:4e:b0:01';

interface NetRun {
  bytes: number;
  upMs: number;
  downMs: number;
}

function parseNet(name: string, lines: string[]): NetRun {
  const r = parseKitConsole(lines).result;
  if (r?.[0] !== 'net' || r[1] !== 'ok') throw new Error(`${name}: ${r?.join(' ') ?? 'no result line'}\n${lines.slice(-15).join('\n')}`);
  const word = (k: string): number => Number(r.find((w) => w.startsWith(`${k}=`))?.slice(k.length + 1));
  return { bytes: word('xfer_bytes'), upMs: word('up_ms'), downMs: word('down_ms') };
}

const append = (host: NetHost, kib: number): string => `${host.guestArgs(1)} muxvisor.steps=ping:${host.hostIp},xfer:${kib}`;

async function onMuxvisor(dir: string, kib: number): Promise<NetRun> {
  const host = new NetHost({ netns: `mvbench-net-m${process.pid}` });
  const ifname = `mvbm${process.pid % 100000}`;
  const consolePath = join(dir, 'mux-net.log');
  const config = parseConfig(
    {
      socket: join(dir, 'mvnet.sock'),
      devices: [{ id: 'nic0', kind: 'ne2k', backend: { type: 'tap', ifname, netns: host.netns } }],
      guests: [{ name: 'netbench', run: { type: 'qemu', append: `${append(host, kib)} muxvisor.guest=netbench`, console: consolePath, accel: accel() }, grants: [{ device: 'nic0', mac: MAC }] }],
    },
    'linux net bench config',
  );
  const sup = new Supervisor({ config, createRouter: await muxRouterFactory(config, {}), defaultAuth: null });
  try {
    await sup.listen({ path: join(dir, 'mvnet.sock') });
    const launched = await launchGuests(sup, config, join(dir, 'mvnet.sock'), silentLogger);
    await host.configure(ifname);
    const [o] = await Promise.all(launched.map((l) => l.done));
    if (!o.ok) throw new Error(`netbench on muxvisor: ${o.detail}`);
    return parseNet('muxvisor', readFileSync(consolePath, 'latin1').replace(/\r/g, '').split('\n'));
  } finally {
    await sup.close();
    await host.remove();
  }
}

async function onQemu(kib: number): Promise<NetRun> {
  const host = new NetHost({ netns: `mvbench-net-q${process.pid}` });
  const ifname = `mvbq${process.pid % 100000}`;
  try {
    // QEMU runs inside the namespace, so its -netdev tap makes the TAP there.
    const child = spawn('ip', [
      'netns', 'exec', host.netns, findBinary(QEMU_BINARY)!,
      '-nodefaults', '-display', 'none', '-no-reboot', '-accel', accel(), '-smp', '1', '-m', '256M',
      '-kernel', join(GUEST_KIT_DIR, 'bzImage'), '-initrd', join(GUEST_KIT_DIR, 'initramfs.cpio.gz'),
      '-append', `console=ttyS0 ${append(host, kib)} muxvisor.guest=local`, '-serial', 'stdio',
      '-netdev', `tap,id=n0,ifname=${ifname},script=no,downscript=no`, '-device', `ne2k_pci,netdev=n0,mac=${MAC}`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('latin1').on('data', (s: string) => (out += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (err = (err + s).slice(-2000)));
    const closed = new Promise<number | null>((res) => child.once('close', res));
    const timer = setTimeout(() => child.kill('SIGKILL'), 1_800_000);
    try {
      await host.configure(ifname);
    } catch (e) {
      child.kill('SIGKILL');
      throw new Error(`${(e as Error).message}; qemu: ${err.trim()}`);
    }
    const code = await closed;
    clearTimeout(timer);
    if (code !== 0) throw new Error(`QEMU's own ne2k_pci run exited ${code}: ${err.trim()}`);
    return parseNet('qemu', out.replace(/\r/g, '').split('\n'));
  } finally {
    await host.remove();
  }
}

const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const round = (x: number, d = 3): number => Number(x.toFixed(d));

/** The figures; `kib` each way (MUXVISOR_BENCH_NET_KIB overrides). */
export async function runNet(dir: string, opts: { quick: boolean }): Promise<Record<string, unknown>> {
  if (process.getuid?.() !== 0) return { 'linux.net.skipped': 'needs root (a network namespace and a TAP for the wire)' };
  if (!findBinary('ip')) return { 'linux.net.skipped': 'ip not installed — apt-get install iproute2' };
  const kib = Number(process.env.MUXVISOR_BENCH_NET_KIB ?? (opts.quick ? 256 : 1024));
  const mux = await onMuxvisor(dir, kib);
  const local = await onQemu(kib);
  rmSync(join(dir, 'mux-net.log'), { force: true });
  const up = mbps(mux.bytes, mux.upMs) / mbps(local.bytes, local.upMs);
  const down = mbps(mux.bytes, mux.downMs) / mbps(local.bytes, local.downMs);
  return {
    'linux.net.kib': kib,
    'linux.net.muxvisor.upMBps': round(mbps(mux.bytes, mux.upMs), 4),
    'linux.net.muxvisor.downMBps': round(mbps(mux.bytes, mux.downMs), 4),
    'linux.net.qemu.upMBps': round(mbps(local.bytes, local.upMs), 4),
    'linux.net.qemu.downMBps': round(mbps(local.bytes, local.downMs), 4),
    'linux.netVsQemu.up': round(up, 4),
    'linux.netVsQemu.down': round(down, 4),
    'linux.netVsQemu': round(Math.sqrt(up * down), 4),
  };
}
