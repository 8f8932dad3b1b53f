// machines/ne2k on a card we did not write: QEMU's ne2k_pci over qtest (kind qemu-ne2k) time-
// sliced by the MUX engine (`"mux": { "machine": "ne2k" }`), its -netdev a UDP socket to a peer
// on loopback. Two guests probe (each reads its granted MAC), initialise and transmit as Linux's
// ne2k-pci does, at the same time: every switch happens in the chart's safe state, and every
// frame leaves through QEMU's card intact, with its sender's MAC.

import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/log.ts';
import { muxRouterFactory } from '../src/mux/router-factory.ts';
import type { MuxEngine } from '../src/mux/engine.ts';
import { Supervisor } from '../src/supervisor.ts';
import { BROADCAST, ethFrame, Ne2kDriver } from '../src/guests/ne2k-driver.ts';
import { findPciIoBar, PortDevice } from '../src/guests/port-device.ts';
import { SAFE_CONDITION, statePathOf } from '../machines/ne2k/chart.ts';
import { missing, titled } from './helpers/requires.ts';

const why = missing('qemu');
const MACS: Record<string, number[]> = { g1: [0x52, 0x54, 0, 0x12, 0x34, 1], g2: [0x52, 0x54, 0, 0x12, 0x34, 2] };
const FRAMES = 4;

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

let cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe.skipIf(why)(titled("machines/ne2k time-slicing QEMU's ne2k_pci", why), () => {
  it('two guests probe their own MACs, init and transmit at once; switches only in the safe state; every frame leaves intact', async () => {
    const peer = await bound();
    cleanup.push(() => peer.close());
    const fromPeer: Uint8Array[] = [];
    peer.on('message', (m) => fromPeer.push(new Uint8Array(m)));
    const probe = await bound();
    const qemuPort = probe.address().port;
    probe.close();
    const config = parseConfig({
      devices: [
        {
          id: 'nic0',
          kind: 'qemu-ne2k',
          backend: { type: 'qemu', netdev: `socket,udp=127.0.0.1:${peer.address().port},localaddr=127.0.0.1:${qemuPort}` },
          // Every access is a qtest round trip on a loaded machine: a generous watchdog.
          mux: { machine: 'ne2k', deadlineNs: 30_000_000_000 },
        },
      ],
      guests: ['g1', 'g2'].map((name, i) => ({ name, grants: [{ device: 'nic0', mac: `52:54:00:12:34:0${i + 1}` }] })),
    });
    let engine: MuxEngine | null = null;
    const sup = new Supervisor({ config, logger: silentLogger, createRouter: await muxRouterFactory(config, { onEngine: (_id, e) => (engine = e) }) });
    await sup.start();
    cleanup.push(() => sup.close());
    expect(engine).not.toBeNull();
    const macs = await Promise.all(
      ['g1', 'g2'].map(async (name, i) => {
        const port = sup.attachLocalGuest(name);
        const d = new Ne2kDriver(new PortDevice(port, (await findPciIoBar(port, 0x10ec, 0x8029))!));
        if (i === 1) [d.rxStart, d.stopPage] = [0x80, 0xc0]; // rings of their own in the card's buffer
        const mac = await d.probe();
        await d.init(mac);
        for (let k = 0; k < FRAMES; k++) await d.send(ethFrame(BROADCAST, mac, 120, 10 * i + k));
        return [...mac];
      }),
    );
    expect(macs).toEqual([MACS.g1, MACS.g2]);
    const end = Date.now() + 15_000;
    while (fromPeer.length < 2 * FRAMES && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    for (const [i, name] of ['g1', 'g2'].entries()) {
      const mine = fromPeer.filter((f) => f[11] === MACS[name][5]).map((f) => [...f]);
      expect(mine, name).toEqual(Array.from({ length: FRAMES }, (_, k) => [...ethFrame(BROADCAST, MACS[name], 120, 10 * i + k)]));
    }
    const st = sup.stats().devices.find((d) => d.device === 'nic0')!;
    expect(st.switches).toBeGreaterThan(1);
    expect(st.unsafeSwitches).toBe(0); // the engine counts a change of owner outside a safe state
    expect(st.faults).toBe(0);
    expect((engine as unknown as MuxEngine).stats().state).toBe(statePathOf(SAFE_CONDITION));
  }, 60_000);
});
