// The NIC demo: N scripted guests share one NE2000 (our model) through the shared-NIC router,
// each with its own MAC and virtual card. They send frames to each other and broadcasts, and
// with `--backend udp` to an outside peer on loopback that echoes them back through the wire
// (`--backend tap`: pings to the Linux host of a network namespace behind a TAP);
// every frame read is checked, and at the end each guest must have read every frame sent to
// it (or the router counted it dropped for that guest).

import { createSocket, type Socket } from 'node:dgram';
import { parseConfig } from '../config/load.ts';
import type { Logger } from '../log.ts';
import { silentLogger } from '../log.ts';
import { Supervisor } from '../supervisor.ts';
import { muxRouterFactory } from '../mux/router-factory.ts';
import { Ne2kDriver } from '../guests/ne2k-driver.ts';
import { findPciIoBar, PortDevice } from '../guests/port-device.ts';
import { deviceSummary, type DemoSummary } from './summary.ts';
import { Ledger, NicDemoGuest, type NicGuestProgress, type PeerMode } from './nic-guest.ts';
import { createDemoNetns, type DemoNetns } from './nic-netns.ts';
import { echoOf, formatMacText, guestMac, PEER_MAC } from '../guests/nic-traffic.ts';
import type { NicShareRouter } from '../mux/nic/nic-router.ts';

export type NicBackend = 'switch' | 'udp' | 'tap' | 'qemu';
export const NIC_BACKENDS: readonly NicBackend[] = ['switch', 'udp', 'tap', 'qemu'];

export interface NicDemoOptions {
  guests: number;
  seconds: number;
  backend: NicBackend;
  logger?: Logger;
  onProgress?: (guests: NicGuestProgress[], elapsed: number) => void;
  /** Stop after this many rounds per guest (bench); default: run for `seconds`. */
  maxRounds?: number;
  /** Folder for pcap files (the card's `capture` property): wire.pcap and GUEST.pcap. */
  capture?: string;
}

export interface NicDemoResult {
  summary: DemoSummary;
  progress: NicGuestProgress[];
  elapsedNs: number;
  backend: NicBackend;
  /** Frames the outside peer echoed (udp). */
  peerEchoes: number;
}

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve());
  });
  return s;
}

/** The outside host of the udp backend: echoes every frame sent to its MAC. */
async function startPeer(): Promise<{ socket: Socket; echoes: () => number; connect(port: number): void }> {
  const socket = await bound();
  let echoes = 0;
  let cardPort = 0;
  socket.on('message', (m) => {
    const f = new Uint8Array(m);
    if (cardPort === 0 || f.length < 14 || !f.subarray(0, 6).every((b, i) => b === PEER_MAC[i])) return;
    echoes++;
    socket.send(Buffer.from(echoOf(f)), cardPort, '127.0.0.1');
  });
  return { socket, echoes: () => echoes, connect: (p) => (cardPort = p) };
}

export async function runNicDemo(opts: NicDemoOptions): Promise<NicDemoResult> {
  const log = opts.logger ?? silentLogger;
  if (opts.guests > 200) throw new Error('the NIC demo numbers guests\' MACs 52:54:00:12:34:01..c8: at most 200 guests');
  let sup: Supervisor | null = null;
  let peer: Awaited<ReturnType<typeof startPeer>> | null = null;
  let netns: DemoNetns | null = null;
  try {
    let backend: Record<string, unknown> = { type: 'switch' };
    let kind = 'ne2k';
    if (opts.backend === 'udp' || opts.backend === 'qemu') {
      peer = await startPeer();
      const probe = await bound();
      const local = probe.address().port;
      probe.close();
      peer.connect(local);
      backend = { type: 'udp', local: `127.0.0.1:${local}`, remote: `127.0.0.1:${peer.socket.address().port}` };
      if (opts.backend === 'qemu') {
        // QEMU's own ne2k_pci (over qtest) is the physical card; its -netdev carries the frames to the peer.
        kind = 'qemu-ne2k';
        backend = { type: 'qemu', netdev: `socket,udp=127.0.0.1:${peer.socket.address().port},localaddr=127.0.0.1:${local}` };
      }
    }
    if (opts.backend === 'tap') {
      netns = createDemoNetns();
      backend = { type: 'tap', ifname: netns.ifname, netns: netns.name };
    }
    const names = Array.from({ length: opts.guests }, (_, i) => `guest${i + 1}`);
    const config = parseConfig(
      {
        devices: [{ id: 'nic0', kind, backend, properties: opts.capture !== undefined ? { capture: opts.capture } : {} }],
        guests: names.map((name, i) => ({ name, grants: [{ device: 'nic0', mac: formatMacText(guestMac(i)) }] })),
      },
      'demo config',
    );
    let router: NicShareRouter | null = null;
    sup = new Supervisor({ config, logger: log, createRouter: await muxRouterFactory(config, { logger: log, onNicRouter: (_id, r) => (router = r) }) });
    await sup.start();
    netns?.configure();
    const ledger = new Ledger(opts.guests);
    const guests: NicDemoGuest[] = [];
    for (const [i, name] of names.entries()) {
      const port = sup.attachLocalGuest(name);
      const base = await findPciIoBar(port, 0x10ec, 0x8029);
      if (base === null) throw new Error(`${name}: no RTL8029 (10ec:8029) in its PCI scan`);
      const mode: PeerMode = opts.backend === 'udp' || opts.backend === 'qemu' ? { kind: 'echo' } : netns ? { kind: 'ping', ip: netns.guestIp(i), hostIp: netns.hostIp } : { kind: 'none' };
      guests.push(new NicDemoGuest(name, i, new Ne2kDriver(new PortDevice(port, base)), ledger, mode, opts.backend !== 'qemu'));
    }
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    const progress = () => guests.map((g) => ({ ...g.progress }));
    const ticker = opts.onProgress ? setInterval(() => opts.onProgress!(progress(), elapsed()), 250) : null;
    try {
      await Promise.all(guests.map((g) => g.start()));
      const deadline = Date.now() + opts.seconds * 1000;
      await Promise.all(
        guests.map((g) => {
          let rounds = 0;
          return g.run(() => (opts.maxRounds !== undefined ? rounds++ >= opts.maxRounds : Date.now() >= deadline));
        }),
      );
      await (router as NicShareRouter | null)?.idle();
      const nicOf = (name: string) => sup!.stats().devices.find((d) => d.device === 'nic0')?.perGuest.find((p) => p.guest === name)?.nic;
      await Promise.all(guests.map((g) => g.finish(() => nicOf(g.name)?.dropped ?? 0, 2000, () => nicOf(g.name)?.txDropped ?? 0)));
    } finally {
      if (ticker) clearInterval(ticker);
    }
    const elapsedNs = Number(process.hrtime.bigint() - started);
    opts.onProgress?.(progress(), elapsedNs / 1e9);
    const stats = sup.stats().devices.find((d) => d.device === 'nic0')!;
    const summary: DemoSummary = {
      devices: [
        deviceSummary(
          sup,
          'nic0',
          guests.map((g) => {
            const nic = stats.perGuest.find((p) => p.guest === g.name)?.nic ?? {};
            return {
              guest: g.name,
              ops: g.progress.sent + g.progress.received,
              bytes: g.progress.bytes,
              errors: g.progress.errors,
              verified: g.progress.phase === 'verified',
              mac: formatMacText(guestMac(g.index)),
              nic,
            };
          }),
        ),
      ],
    };
    return { summary, progress: progress(), elapsedNs, backend: opts.backend, peerEchoes: peer?.echoes() ?? 0 };
  } finally {
    await sup?.close();
    peer?.socket.close();
    netns?.remove();
  }
}
