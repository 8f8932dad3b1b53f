// The shared-NIC router on a card we did not write: QEMU's ne2k_pci over qtest as the
// physical card (kind qemu-ne2k), its -netdev a UDP socket to a peer on loopback. The router
// drives QEMU's card asynchronously (every register access a qtest round trip) while the
// guests use their own virtual cards.

import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/log.ts';
import { muxRouterFactory } from '../src/mux/router-factory.ts';
import type { NicShareRouter } from '../src/mux/nic/nic-router.ts';
import { Supervisor } from '../src/supervisor.ts';
import { BROADCAST, ethFrame, Ne2kDriver, type Received } from '../src/guests/ne2k-driver.ts';
import { findPciIoBar, PortDevice } from '../src/guests/port-device.ts';
import { missing, titled } from './helpers/requires.ts';

const why = missing('qemu');
const EXT = [0x52, 0x54, 0, 0x99, 0, 1];
const G1 = [0x52, 0x54, 0, 0x12, 0x34, 1];

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

async function receiveUntil(drv: Ne2kDriver, want: number, ms = 10_000): Promise<Received[]> {
  const got: Received[] = [];
  const end = Date.now() + ms;
  while (got.length < want && Date.now() < end) {
    got.push(...(await drv.receive()));
    if (got.length < want) await new Promise((r) => setTimeout(r, 10));
  }
  return got;
}

let cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe.skipIf(why)(titled('shared NIC on QEMU\'s ne2k_pci', why), () => {
  it('frames from QEMU\'s netdev reach the guest they are for; a guest\'s frame leaves through QEMU\'s card', async () => {
    const peer = await bound();
    cleanup.push(() => peer.close());
    const probe = await bound();
    const qemuPort = probe.address().port;
    probe.close();
    const config = parseConfig({
      devices: [{ id: 'nic0', kind: 'qemu-ne2k', backend: { type: 'qemu', netdev: `socket,udp=127.0.0.1:${peer.address().port},localaddr=127.0.0.1:${qemuPort}` } }],
      guests: [1, 2].map((i) => ({ name: `g${i}`, grants: [{ device: 'nic0', mac: `52:54:00:12:34:0${i}` }] })),
    });
    let router: NicShareRouter | null = null;
    const sup = new Supervisor({ config, logger: silentLogger, createRouter: await muxRouterFactory(config, { onNicRouter: (_i, r) => (router = r) }) });
    await sup.start();
    cleanup.push(() => sup.close());
    await router!.idle(); // QEMU's card programmed
    const drv: Ne2kDriver[] = [];
    for (const name of ['g1', 'g2']) {
      const port = sup.attachLocalGuest(name);
      const d = new Ne2kDriver(new PortDevice(port, (await findPciIoBar(port, 0x10ec, 0x8029))!));
      await d.init(await d.probe());
      drv.push(d);
    }
    const fromPeer: Uint8Array[] = [];
    peer.on('message', (m) => fromPeer.push(new Uint8Array(m)));
    const toG1 = ethFrame(G1, EXT, 300, 1);
    peer.send(Buffer.from(toG1), qemuPort, '127.0.0.1');
    const bc = ethFrame(BROADCAST, EXT, 80, 2);
    peer.send(Buffer.from(bc), qemuPort, '127.0.0.1');
    expect((await receiveUntil(drv[0], 2)).map((r) => [...r.frame])).toEqual([[...toG1], [...bc]]);
    expect((await receiveUntil(drv[1], 1)).map((r) => [...r.frame])).toEqual([[...bc]]);
    const out = ethFrame(EXT, G1, 200, 3);
    await drv[0].send(out);
    const end = Date.now() + 10_000;
    while (fromPeer.length < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect(fromPeer.map((f) => [...f])).toEqual([[...out]]);
    await router!.idle();
    expect(router!.hostCounters()).toMatchObject({ rxFrames: 2, txFrames: 1, txErrors: 0 });
  }, 60_000);
});
