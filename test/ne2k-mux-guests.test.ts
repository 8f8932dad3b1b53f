// Two guests time-sliced on one NE2000 (our model) through the MUX engine with machines/ne2k,
// driven as Linux's ne2k-pci does (src/guests/ne2k-driver.ts): probe (each reads its granted MAC
// from the PROM), init, transmit, receive by remote DMA read; every switch happens in the chart's
// one safe state; a guest stalled mid remote-DMA keeps the card until the watchdog; status the
// card keeps for its owner (TSR, counters, ISR bits, the interrupt) stays each guest's own; and
// a config naming the machine gets the engine instead of the NIC router. The chart's transitions
// are walked in test/ne2k-machine-paths.test.ts.

import { describe, expect, it } from 'vitest';
import * as R from '../src/devices/ne2k/regs.ts';
import type { Device } from '../src/device.ts';
import { Ne2kDevice } from '../src/devices/ne2k/ne2k-device.ts';
import { BROADCAST, ethFrame, Ne2kDriver } from '../src/guests/ne2k-driver.ts';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/log.ts';
import { muxRouterFactory } from '../src/mux/router-factory.ts';
import type { MuxEngine } from '../src/mux/engine.ts';
import { Supervisor } from '../src/supervisor.ts';
import { findPciIoBar, PortDevice } from '../src/guests/port-device.ts';
import { SAFE_CONDITION, statePathOf } from '../machines/ne2k/chart.ts';
import { openNe2kMux, type Ne2kMuxRig } from './helpers/ne2k-mux.ts';

const SAFE_NAME = statePathOf(SAFE_CONDITION);

// ---- two Linux-like guests time-sliced on one card -------------------------------------------

const MACS: Record<string, number[]> = { a: [0x52, 0x54, 0x00, 0x00, 0x00, 0x0a], b: [0x52, 0x54, 0x00, 0x00, 0x00, 0x0b] };
const GRANTS = { a: '52:54:00:00:00:0a', b: '52:54:00:00:00:0b' };
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A driver per guest with a ring of its own in the card's buffer (a: 0x4C-0x80, b: 0x80-0xC0). */
function driverFor(rig: Ne2kMuxRig, id: 'a' | 'b'): Ne2kDriver {
  const d = new Ne2kDriver(rig.guest(id));
  if (id === 'b') {
    d.rxStart = 0x80;
    d.stopPage = 0xc0;
  }
  return d;
}

function expectSwitchesSafe(rig: Ne2kMuxRig): number {
  const grants = rig.traces.filter((t) => t.kind === 'grant');
  for (const g of grants) {
    expect(g.safe, `grant to ${g.guest} in ${g.state}`).toBe(true);
    expect(g.state).toBe(SAFE_NAME);
  }
  expect(rig.stats().unsafeSwitches).toBe(0);
  return grants.length;
}

describe('machines/ne2k: two guests driving the card as Linux ne2k-pci does', () => {
  it('probe, init, transmit and receive by remote DMA read, interleaved: every switch in the safe state, every stored frame read by its owner intact', async () => {
    const rig = openNe2kMux({ guests: ['a', 'b'], macs: GRANTS });
    try {
      const injected: Array<{ seq: number; owner: string | null; result: string; frame: Uint8Array }> = [];
      const got: Record<string, Uint8Array[]> = { a: [], b: [] };
      let running = 2;
      const script = async (id: 'a' | 'b') => {
        const d = driverFor(rig, id);
        const prom = await d.probe();
        expect([...prom], `${id} reads its own MAC from the PROM`).toEqual(MACS[id]);
        await d.init(prom);
        for (let i = 0; i < 12; i++) {
          const r = await d.send(ethFrame(BROADCAST, MACS[id], 100 + i, i + (id === 'a' ? 0 : 50)));
          expect(r.isr & R.ENISR_TX, `${id} PTX`).not.toBe(0);
          expect(r.tsr & R.ENTSR_PTX).not.toBe(0);
          for (const f of await d.receive()) got[id].push(f.frame);
          await tick();
        }
        running--;
      };
      // The wire: a broadcast between guest steps; it lands in the ring of whoever holds the card.
      const wire = (async () => {
        for (let seq = 0; running > 0; seq++) {
          await tick();
          const frame = ethFrame(BROADCAST, [0x02, 0, 0, 0, 0, 0x99], 64 + (seq % 200), 1000 + seq);
          const owner = rig.mux.ownerId();
          injected.push({ seq, owner, result: rig.inject(frame), frame });
        }
      })();
      await Promise.all([script('a'), script('b'), wire]);
      // Each drains what is left in its own ring (the card comes back to it with its ring).
      for (const id of ['a', 'b'] as const) for (const f of await driverFor(rig, id).receive()) got[id].push(f.frame);

      const switches = expectSwitchesSafe(rig);
      expect(switches).toBeGreaterThan(4); // the card really changed hands
      const stored = injected.filter((x) => x.result === 'stored');
      expect(stored.length).toBeGreaterThan(0);
      for (const id of ['a', 'b'] as const) {
        const mine = stored.filter((x) => x.owner === id).map((x) => [...x.frame]);
        expect(got[id].map((f) => [...f]), `${id}'s frames`).toEqual(mine);
      }
      // Both guests' frames left the card intact, each with its own source MAC.
      for (const id of ['a', 'b'] as const) {
        const sent = rig.wire.sent.filter((f) => f[11] === MACS[id][5]);
        expect(sent).toHaveLength(12);
        sent.forEach((f, i) => expect([...f]).toEqual([...ethFrame(BROADCAST, MACS[id], 100 + i, i + (id === 'a' ? 0 : 50))]));
      }
      const st = rig.stats();
      expect(st.resets).toBe(0);
      expect(st.faults).toBe(0);
      expect(st.perGuest.map((g) => g.denials)).toEqual([0, 0]);
      // The card is shared in time: a unicast to a guest that does not hold the card is filtered
      // by the holder's PAR (the NIC router, not this machine, gives every guest its own ring).
      const holder = rig.mux.ownerId() as 'a' | 'b';
      const other = holder === 'a' ? 'b' : 'a';
      expect(rig.inject(ethFrame(MACS[other], [0x02, 0, 0, 0, 0, 0x99], 64))).toBe('filtered');
    } finally {
      await rig.close();
    }
  }, 60_000);

  it('a guest stalled mid remote-DMA keeps the card until the watchdog cuts it off; the other then transmits', async () => {
    const DEADLINE_NS = 50_000_000;
    const rig = openNe2kMux({ guests: ['a', 'b'], deadlineNs: DEADLINE_NS, manualWatchdog: true });
    try {
      const a = driverFor(rig, 'a');
      const b = driverFor(rig, 'b');
      await a.probe();
      await a.init(Uint8Array.from(MACS.a));
      await b.probe();
      await b.init(Uint8Array.from(MACS.b));
      expectSwitchesSafe(rig);
      // a: a remote read of 256 bytes of its ring, of which it takes 8 and then nothing more.
      const ga = rig.guest('a');
      await ga.write(0, R.NE_CMD, 1, R.E8390_NODMA | R.E8390_START);
      await ga.write(0, R.EN0_RCNTLO, 1, 0);
      await ga.write(0, R.EN0_RCNTHI, 1, 1);
      await ga.write(0, R.EN0_RSARLO, 1, 0);
      await ga.write(0, R.EN0_RSARHI, 1, 0x4c);
      await ga.write(0, R.NE_CMD, 1, R.E8390_RREAD | R.E8390_START);
      await ga.readString!(0, R.NE_DATAPORT, 4, 2);
      expect(rig.state()).toBe('started.page0_dmaBusy_txIdle_normal');
      expect(rig.mux.ownerId()).toBe('a');
      expect(rig.heldWatchdogs().map((t) => t.delayNs)).toEqual([DEADLINE_NS]);
      // b wants to transmit: it waits, however long, while a's transfer is open.
      const frame = ethFrame(BROADCAST, MACS.b, 80, 7);
      const sending = b.send(frame);
      for (let i = 0; i < 50; i++) await tick();
      expect(rig.mux.ownerId()).toBe('a');
      expect(rig.stats().perGuest.find((g) => g.guest === 'b')!.stalls).toBeGreaterThan(0);
      expect(rig.wire.sent).toHaveLength(0);
      expect(rig.fireWatchdogs()).toBe(1); // the deadline passes
      const r = await sending;
      expect(r.tsr & R.ENTSR_PTX).not.toBe(0);
      expect([...rig.wire.sent[0].subarray(0, frame.length)]).toEqual([...frame]);
      const st = rig.stats();
      expect(st.faults).toBe(1);
      expect(st.resets).toBe(1);
      expect(st.unsafeSwitches).toBe(0);
      expect(st.perGuest.find((g) => g.guest === 'a')!.faulted).toBe(true);
      expect(st.perGuest.find((g) => g.guest === 'b')!.faulted).toBe(false);
      expect(rig.state()).toBe(SAFE_NAME);
      await expect(ga.read(0, R.NE_CMD, 1)).rejects.toThrow(/faulted/);
    } finally {
      await rig.close();
    }
  }, 60_000);
});

describe('machines/ne2k: a guest granted a MAC reads its own PROM', () => {
  it('byte, word and 32-bit reads of the PROM (and past its end) answer as a lone card with that MAC', async () => {
    const rig = openNe2kMux({ guests: ['a', 'b'], macs: GRANTS });
    const lone = new Ne2kDevice({ irq: { set: () => {} }, dma: { read: async () => null, write: async () => false }, clock: () => 0 }, undefined, { mac: Uint8Array.from(MACS.b) });
    try {
      await new Ne2kDriver(rig.guest('a')).probe(); // a holds the card first; b's reads come after a switch
      const readProm = async (dev: Device, dcr: number, size: 1 | 2 | 4, count: number, start: number) => {
        const w = (o: number, v: number) => Promise.resolve(dev.write(0, o, 1, v));
        await w(R.NE_CMD, R.E8390_NODMA | R.E8390_STOP);
        await w(R.EN0_DCFG, dcr);
        await w(R.EN0_RCNTLO, 64);
        await w(R.EN0_RCNTHI, 0);
        await w(R.EN0_RSARLO, start);
        await w(R.EN0_RSARHI, 0);
        await w(R.NE_CMD, R.E8390_RREAD | R.E8390_START);
        const one = [...(await Promise.resolve(dev.readString!(0, R.NE_DATAPORT, size, count)))];
        const single = await Promise.resolve(dev.read(0, R.NE_DATAPORT, size));
        await w(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
        return [...one, single];
      };
      for (const [dcr, size, count, start] of [[0x48, 1, 40, 0], [0x49, 1, 20, 0], [0x49, 2, 20, 3], [0x49, 4, 10, 2], [0x48, 2, 12, 30]] as const) {
        const want = await readProm(lone, dcr, size, count, start);
        expect(await readProm(rig.guest('b'), dcr, size, count, start), `DCR ${dcr.toString(16)} size ${size} from ${start}`).toEqual(want);
      }
      expect(rig.stats().switches).toBeGreaterThan(1);
      expectSwitchesSafe(rig);
    } finally {
      await rig.close();
    }
  }, 60_000);
});

describe('machines/ne2k from a config: "mux": { "machine": "ne2k" }', () => {
  it('the supervisor time-slices the card through the engine; guests probe their granted MACs and transmit; every switch safe', async () => {
    const config = parseConfig({
      devices: [{ id: 'nic0', kind: 'ne2k', mux: { machine: 'ne2k' } }],
      guests: (['a', 'b'] as const).map((name) => ({ name, grants: [{ device: 'nic0', mac: GRANTS[name] }] })),
    });
    let engine: MuxEngine | null = null;
    let router = false;
    const sup = new Supervisor({ config, logger: silentLogger, createRouter: await muxRouterFactory(config, { onEngine: (_id, e) => (engine = e), onNicRouter: () => (router = true) }) });
    await sup.start();
    try {
      const traces: string[] = [];
      const ran = await Promise.all(
        (['a', 'b'] as const).map(async (name) => {
          const port = sup.attachLocalGuest(name);
          const d = new Ne2kDriver(new PortDevice(port, (await findPciIoBar(port, 0x10ec, 0x8029))!));
          if (name === 'b') d.rxStart = 0x80;
          if (name === 'b') d.stopPage = 0xc0;
          const mac = await d.probe();
          await d.init(mac);
          for (let i = 0; i < 5; i++) traces.push(`${name}:${(await d.send(ethFrame(BROADCAST, mac, 80, i))).tsr & R.ENTSR_PTX}`);
          return [...mac];
        }),
      );
      expect(ran).toEqual([MACS.a, MACS.b]);
      expect(router).toBe(false);
      expect(engine).not.toBeNull();
      expect(traces.filter((t) => t.endsWith(':1'))).toHaveLength(10);
      const st = sup.stats().devices.find((d) => d.device === 'nic0')!;
      expect(st.switches).toBeGreaterThan(1);
      expect(st.unsafeSwitches).toBe(0);
      expect(st.faults).toBe(0);
      expect((engine as unknown as MuxEngine).stats().state).toBe(SAFE_NAME);
    } finally {
      await sup.close();
    }
  }, 60_000);
});

describe('machines/ne2k: status the card keeps for its owner stays each guest\'s own', () => {
  it('TSR of the last own transmit, tally counters (CNTR2: frames a full ring missed), pending ISR bits and the interrupt they raise', async () => {
    const rig = openNe2kMux({ guests: ['a', 'b'], macs: GRANTS });
    try {
      const a = driverFor(rig, 'a');
      const b = driverFor(rig, 'b');
      await a.init(await a.probe());
      expect((await a.send(ethFrame(BROADCAST, MACS.a, 80, 1))).tsr).toBe(R.ENTSR_PTX);
      await b.init(await b.probe());
      const gb = rig.guest('b');
      // b: a transmit of 0 bytes is aborted (TSR ABT, TXE), and its ring fills up.
      await gb.write(0, R.EN0_TCNTLO, 1, 0);
      await gb.write(0, R.EN0_TCNTHI, 1, 0);
      await gb.write(0, R.NE_CMD, 1, R.E8390_NODMA | R.E8390_START | R.E8390_TRANS);
      expect(await gb.read(0, R.EN0_TSR, 1)).toBe(R.ENTSR_ABT);
      let missed = 0;
      for (let i = 0; i < 40; i++) if (rig.inject(ethFrame(MACS.b, [2, 0, 0, 0, 0, 9], 1500, i)) === 'full') missed++;
      expect(missed).toBeGreaterThan(0);
      const bIsr = await gb.read(0, R.EN0_ISR, 1);
      expect(bIsr & R.ENISR_RX).not.toBe(0);
      expect(rig.irqs.get('b')!.at(-1)).toBe(true); // PRX, unmasked (IMR 0x3F): b's line is up
      const aIrqs = rig.irqs.get('a')!.length;
      // a comes back: its own TSR, no counts of b's, none of b's status bits, not b's interrupt.
      const ga = rig.guest('a');
      expect(await ga.read(0, R.EN0_TSR, 1)).toBe(R.ENTSR_PTX);
      expect(await ga.read(0, R.EN0_COUNTER2, 1)).toBe(0);
      expect((await ga.read(0, R.EN0_ISR, 1)) & (R.ENISR_RX | R.ENISR_TX_ERR)).toBe(0);
      expect(rig.irqs.get('a')!.slice(aIrqs)).not.toContain(true);
      expect(rig.irqs.get('b')!.at(-1)).toBe(false); // lowered when b lost the card
      // b again: its TSR, its missed frames (once: clear on read), its pending PRX.
      const bIrqs = rig.irqs.get('b')!.length;
      expect(await gb.read(0, R.EN0_TSR, 1)).toBe(R.ENTSR_ABT);
      expect(rig.irqs.get('b')!.slice(bIrqs)).toContain(true); // raised again when b got the card back
      expect(await gb.read(0, R.EN0_COUNTER2, 1)).toBe(missed);
      expect(await gb.read(0, R.EN0_COUNTER2, 1)).toBe(0);
      expect((await gb.read(0, R.EN0_ISR, 1)) & R.ENISR_RX).not.toBe(0);
      expect(rig.stats().switches).toBeGreaterThanOrEqual(4);
      expectSwitchesSafe(rig);
    } finally {
      await rig.close();
    }
  }, 60_000);
});
