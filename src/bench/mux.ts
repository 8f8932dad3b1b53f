// MUX decision cost: classify + statechart step per access, on the compiled table (fast) and
// on the xstate interpreter, over a realistic access stream of the simulated device (block
// reads and writes: ADDR, CMD, STATUS polls, DATA). Also the whole owner access through the
// engine (sync device): mux.accessNs.

import sim from '../../machines/sim.ts';
import roundRobin from '../../policies/round-robin.ts';
import { SimDevice } from '../devices/sim.ts';
import { createStepper, type Stepper } from '../mux/compile.ts';
import type { MuxAccess } from '../mux/define.ts';
import { createMux } from '../mux/engine.ts';
import { resolveRegisters } from '../mux/registers.ts';
import type { Access } from '../access.ts';

/** One recorded access of the sim driver: offset, direction, value written or read. */
type Rec = [offset: number, dir: 'read' | 'write', value: number];

/** A READ then a WRITE command as the device sees them. */
const STREAM: Rec[] = [
  [1, 'write', 2], [3, 'write', 1], [4, 'read', 0x80], [4, 'read', 0x80], [4, 'read', 0x08],
  ...Array.from({ length: 8 }, (): Rec => [0, 'read', 0x5a]), [4, 'read', 0x00],
  [1, 'write', 3], [3, 'write', 2], [4, 'read', 0x80], [4, 'read', 0x08],
  ...Array.from({ length: 8 }, (): Rec => [0, 'write', 0xa5]), [4, 'read', 0x80], [4, 'read', 0x00],
];

const WARMUP = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function decisionNs(stepper: Stepper, accesses: MuxAccess[], values: number[], perBatch: number, batches: number): number {
  const samples: number[] = [];
  let sink = 0;
  for (let b = 0; b < batches + WARMUP; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < perBatch; i++) {
      const k = i % accesses.length;
      const ev = sim.classify(accesses[k], values[k]);
      if (ev != null) stepper.send(ev);
      if (stepper.safe()) sink++;
    }
    const ns = Number(process.hrtime.bigint() - t0) / perBatch;
    if (b >= WARMUP) samples.push(ns); // the first batches warm up the JIT
  }
  if (sink < 0) throw new Error('unreachable');
  return median(samples);
}

function accessNs(perBatch: number, batches: number): number {
  const mux = createMux(sim, { deviceId: 'bench', policy: roundRobin() });
  mux.bind(new SimDevice(mux.edges, 8));
  mux.attach({ id: 'g', weight: 1, priority: 0, deadlineNs: Infinity, memory: null, setIrq() {} });
  // The same driver stream, as guest accesses (reads return what the device says).
  const accs: Access[] = STREAM.map(([offset, dir, value]) => ({ space: 'pio', addr: 0x340 + offset, size: 1, dir, value: dir === 'write' ? value : undefined }));
  const samples: number[] = [];
  for (let b = 0; b < batches + WARMUP; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < perBatch; i++) {
      const a = accs[i % accs.length];
      mux.access('g', 0, a.addr - 0x340, a);
    }
    const ns = Number(process.hrtime.bigint() - t0) / perBatch;
    if (b >= WARMUP) samples.push(ns);
  }
  void mux.close();
  return median(samples);
}

export async function run(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const regs = resolveRegisters(sim, ['regs']);
  const accesses: MuxAccess[] = STREAM.map(([offset, dir, value]) => ({
    reg: regs.at(0, offset, dir),
    region: 0,
    offset,
    size: 1,
    dir,
    value: dir === 'write' ? value : 0,
    count: 1,
  }));
  const values = STREAM.map(([, , v]) => v);
  const n = opts.quick ? 1 : 3;
  const fast = decisionNs(createStepper(sim.machine, 'fast'), accesses, values, 50_000 * n, 9);
  const xstate = decisionNs(createStepper(sim.machine, 'xstate'), accesses, values, 2_000 * n, 9);
  const access = accessNs(20_000 * n, 9);
  const r = (x: number) => Math.round(x * 10) / 10;
  return { 'mux.decisionNs': { fast: r(fast), xstate: r(xstate) }, 'mux.accessNs': r(access) };
}
