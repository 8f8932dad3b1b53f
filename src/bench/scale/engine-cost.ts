// What the engine itself costs per owner access while N-1 other guests wait, on the simulated
// device (synchronous: no I/O, no event loop): every owner access in a safe state asks the
// policy, so a decision that walks the waiting guests shows here as a cost growing with N.
// The owner keeps the device (its quantum never ends), the others' accesses stay held.

import type { Access } from '../../access.ts';
import sim from '../../../machines/sim.ts';
import roundRobin from '../../../policies/round-robin.ts';
import { SIM_KEY, SimDevice } from '../../devices/sim.ts';
import type { GuestLink } from '../../guest-link.ts';
import { createMux } from '../../mux/engine.ts';

const link = (id: string): GuestLink => ({ id, weight: 1, priority: 0, deadlineNs: Infinity, memory: null, setIrq() {} });

/** Median ns of one owner access (a KEY write) with `guests - 1` guests waiting. */
export function ownerAccessNs(guests: number, perBatch = 20_000, batches = 7): number {
  const mux = createMux(sim, { deviceId: 'cost', policy: roundRobin({ quantumNs: Number.MAX_SAFE_INTEGER }) });
  mux.bind(new SimDevice(mux.edges, 8));
  for (let i = 0; i < guests; i++) mux.attach(link(`g${i}`));
  const key = (v: number): Access => ({ space: 'pio', addr: 0x340 + SIM_KEY, size: 1, dir: 'write', value: v });
  mux.access('g0', 0, SIM_KEY, key(0)); // g0 owns the free device
  for (let i = 1; i < guests; i++) void mux.access(`g${i}`, 0, SIM_KEY, key(i)); // held until close
  const samples: number[] = [];
  for (let b = 0; b < batches + 2; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < perBatch; i++) mux.access('g0', 0, SIM_KEY, key(i & 0xff));
    if (b >= 2) samples.push(Number(process.hrtime.bigint() - t0) / perBatch); // two batches warm the JIT
  }
  void mux.close();
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1];
}
