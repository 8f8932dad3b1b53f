// The wires behind a shared NE2000: `udp` (one datagram = one frame, QEMU's -netdev
// socket,udp= format) with a peer socket on loopback, and `tap` in a network namespace
// where the Linux stack answers ARP and ping.

import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/log.ts';
import { muxRouterFactory } from '../src/mux/router-factory.ts';
import { Supervisor } from '../src/supervisor.ts';
import { BROADCAST, ethFrame, Ne2kDriver, type Received } from '../src/guests/ne2k-driver.ts';
import { findPciIoBar, PortDevice } from '../src/guests/port-device.ts';
import { missing, titled } from './helpers/requires.ts';
import { arpReplyFor, arpRequest, echoReplyPayload, icmpEcho } from './helpers/net-frames.ts';

const macOf = (i: number) => `52:54:00:12:34:0${i}`;

async function start(n: number, backend: Record<string, unknown>) {
  const config = parseConfig({
    devices: [{ id: 'nic0', kind: 'ne2k', backend }],
    guests: Array.from({ length: n }, (_, i) => ({ name: `g${i + 1}`, grants: [{ device: 'nic0', mac: macOf(i + 1) }] })),
  });
  const sup = new Supervisor({ config, logger: silentLogger, createRouter: await muxRouterFactory(config) });
  await sup.start();
  const drivers: Ne2kDriver[] = [];
  for (let i = 0; i < n; i++) {
    const port = sup.attachLocalGuest(`g${i + 1}`);
    const drv = new Ne2kDriver(new PortDevice(port, (await findPciIoBar(port, 0x10ec, 0x8029))!));
    await drv.init(await drv.probe());
    drivers.push(drv);
  }
  return { sup, drivers };
}

/** Receive until `want` frames matched or the time is up (frames come through sockets). */
async function receiveUntil(drv: Ne2kDriver, pick: (r: Received) => boolean, want = 1, ms = 5000): Promise<Received[]> {
  const got: Received[] = [];
  const end = Date.now() + ms;
  while (got.length < want && Date.now() < end) {
    got.push(...(await drv.receive()).filter(pick));
    if (got.length < want) await new Promise((r) => setTimeout(r, 5));
  }
  return got;
}

async function boundSocket(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

let cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe('udp backend', () => {
  it('frames from the peer reach the guests they are addressed to; guests\' frames reach the peer unless unicast to a guest', async () => {
    const peer = await boundSocket();
    cleanup.push(() => peer.close());
    const probe = await boundSocket();
    const local = probe.address().port;
    probe.close();
    const { sup, drivers } = await start(3, { type: 'udp', local: `127.0.0.1:${local}`, remote: `127.0.0.1:${peer.address().port}` });
    cleanup.push(() => sup.close());
    const [a, b, c] = drivers;
    const fromPeer: Uint8Array[] = [];
    peer.on('message', (m) => fromPeer.push(new Uint8Array(m)));
    const send = (f: Uint8Array) => peer.send(Buffer.from(f), local, '127.0.0.1');
    const ext = [0x52, 0x54, 0, 0x99, 0, 1];
    const toB = ethFrame([0x52, 0x54, 0, 0x12, 0x34, 2], ext, 200, 1);
    send(toB);
    expect((await receiveUntil(b, () => true)).map((r) => [...r.frame])).toEqual([[...toB]]);
    const bc = ethFrame(BROADCAST, ext, 50, 2);
    send(bc);
    for (const d of [a, b, c]) expect((await receiveUntil(d, () => true)).map((r) => [...r.frame])).toEqual([[...bc]]);
    expect(await a.receive()).toEqual([]);
    // Out: unicast to the outside and a broadcast leave; unicast to a guest stays on the card.
    const out1 = ethFrame(ext, [0x52, 0x54, 0, 0x12, 0x34, 1], 100, 3);
    const toC = ethFrame([0x52, 0x54, 0, 0x12, 0x34, 3], [0x52, 0x54, 0, 0x12, 0x34, 1], 100, 4);
    const out2 = ethFrame(BROADCAST, [0x52, 0x54, 0, 0x12, 0x34, 1], 100, 5);
    await a.send(out1);
    await a.send(toC);
    await a.send(out2);
    const end = Date.now() + 5000;
    while (fromPeer.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    expect(fromPeer.map((f) => [...f])).toEqual([[...out1], [...out2]]);
    expect((await c.receive()).map((r) => [...r.frame])).toEqual([[...toC], [...out2]]);
  });

  it('a bad udp backend is an error naming the field', async () => {
    await expect(start(1, { type: 'udp', local: 'nowhere', remote: '127.0.0.1:1' })).rejects.toThrow(/backend\.local: expected HOST:PORT/);
  });
});

const NS = `mvnic${process.pid}`;
const IF = `mvtap${process.pid % 100000}`;
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' }).toString();

describe.skipIf(missing('netns'))(titled('tap backend in a network namespace', missing('netns')), () => {
  it('the namespace\'s Linux stack answers a guest\'s ARP and ping through the shared card', async () => {
    ip('netns', 'add', NS);
    cleanup.push(() => ip('netns', 'del', NS));
    const { sup, drivers } = await start(2, { type: 'tap', ifname: IF, netns: NS });
    cleanup.push(() => sup.close());
    ip('-n', NS, 'addr', 'add', '10.203.0.1/24', 'dev', IF);
    const [a, b] = drivers;
    const macA = Uint8Array.from([0x52, 0x54, 0, 0x12, 0x34, 1]);
    await a.send(arpRequest(macA, '10.203.0.2', '10.203.0.1'));
    const replies = await receiveUntil(a, (r) => arpReplyFor(r.frame, '10.203.0.1') !== null);
    expect(replies.length).toBe(1);
    const hostMac = arpReplyFor(replies[0].frame, '10.203.0.1')!;
    expect([...hostMac]).toEqual(ip('-n', NS, 'link', 'show', IF).match(/link\/ether ([0-9a-f:]+)/)![1].split(':').map((h) => parseInt(h, 16)));
    const payload = Uint8Array.from({ length: 56 }, (_, i) => i);
    await a.send(icmpEcho(macA, hostMac, '10.203.0.2', '10.203.0.1', 0x4d56, 1, payload));
    const echo = await receiveUntil(a, (r) => echoReplyPayload(r.frame, 0x4d56, 1) !== null);
    expect([...echoReplyPayload(echo[0].frame, 0x4d56, 1)!]).toEqual([...payload]);
    // The reply was unicast to a's MAC: b saw none of it (only broadcasts, if any).
    expect((await b.receive()).every((r) => r.frame[0] & 1)).toBe(true);
    const nic = sup.stats().devices[0].perGuest.find((g) => g.guest === 'g1')!.nic!;
    expect(nic.txPackets).toBe(2);
    expect(nic.rxPackets).toBeGreaterThanOrEqual(2);
  });
});
