// KVM trap-layer figures (issue 6):
//   trap.kvm.floorUs   a bare KVM PIO exit answered in native code: the guest loops on
//                      `inb 0x80`, which the runner answers without leaving C
//   trap.kvm.muxUs     a guest `inb` of the ATA status port answered by the device model
//                      through the MUX, in-process runner (the design we ship)
//   trap.kvm.helperMuxUs  the same through a helper process and the channel socket
//   disk.kvmVsQemu     verified bytes/s of the same guest binary on muxvisor (in-process KVM,
//                      MUX, our ATA model on a file) divided by QEMU -accel kvm with QEMU's
//                      IDE, one guest; geometric mean of PIO and DMA (also given apart)

import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/load.ts';
import { muxRouterFactory } from '../mux/router-factory.ts';
import { Supervisor } from '../supervisor.ts';
import { type KvmGuestResult, KvmRunnerError, kvmUnavailableReason, runKvmGuest } from '../trap/kvm.ts';
import { runQemuGuest } from '../trap/kvm-qemu.ts';

interface Rig {
  sup: Supervisor;
  socket: string;
  image: string;
  close(): Promise<void>;
}

async function rig(sectors: number): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'muxvisor-bench-kvm-'));
  const image = join(dir, 'disk.img');
  writeFileSync(image, '');
  truncateSync(image, sectors * 512);
  const socket = join(dir, 'sock');
  const config = parseConfig(
    { socket, devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'file', path: image } }], guests: [{ name: 'bench', grants: [{ device: 'disk0' }] }] },
    'kvm bench config',
  );
  const sup = new Supervisor({ config, createRouter: await muxRouterFactory(config) });
  await sup.listen({ path: socket });
  return {
    sup,
    socket,
    image,
    async close() {
      await sup.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function perInbUs(r: KvmGuestResult, n: number): number {
  const start = r.marks['bench-start'];
  const end = r.marks['bench-end'];
  if (r.exitReason !== 'hlt' || start === undefined || end === undefined) {
    throw new KvmRunnerError(`bench guest stopped with ${r.exitReason} before its MARK lines: ${r.stderr.trim()}`);
  }
  return (end - start) / n;
}

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const why = kvmUnavailableReason();
  if (why) return { 'trap.kvm.skipped': why };
  const n = opts.quick ? 5_000 : 30_000;
  const out: Record<string, unknown> = {};
  let r = await rig(opts.quick ? 256 : 1024);
  try {
    const attach = r.sup.attachLocalGuest.bind(r.sup);
    const inb = async (port: number, how: 'inproc' | 'helper'): Promise<number> => {
      const cmdline = `bench=inb port=${port} n=${n}`;
      return perInbUs(await runKvmGuest(how === 'inproc' ? { name: 'bench', attach, cmdline } : { name: 'bench', connect: r.socket, cmdline }), n);
    };
    // Interleaved rounds, median of each: the machine is shared and noisy.
    const floor: number[] = [];
    const mux: number[] = [];
    await inb(0x1f7, 'inproc'); // warm-up: JIT of the routing path
    for (let i = 0; i < 3; i++) {
      floor.push(await inb(0x80, 'inproc'));
      mux.push(await inb(0x1f7, 'inproc'));
    }
    const floorUs = median(floor);
    const muxUs = median(mux);
    out['trap.kvm.floorUs'] = round(floorUs);
    out['trap.kvm.muxUs'] = round(muxUs);
    out['trap.kvm.helperMuxUs'] = round(await inb(0x1f7, 'helper'));
    out['trap.kvm.muxOverFloor'] = round(muxUs / floorUs);
  } finally {
    await r.close();
  }
  const ratios: number[] = [];
  for (const mode of ['pio', 'dma'] as const) {
    // PIO writes take one exit per word: a smaller disk keeps the run short.
    const sectors = mode === 'pio' ? (opts.quick ? 64 : 256) : opts.quick ? 512 : 2048;
    r = await rig(sectors);
    try {
      const mine = await runKvmGuest({ name: 'bench', attach: r.sup.attachLocalGuest.bind(r.sup), cmdline: `mode=${mode} tag=bench` });
      const qemu = await runQemuGuest({ disk: r.image, accel: 'kvm', cmdline: `mode=${mode} tag=bench` });
      if (!mine.bytesPerSecond || !qemu.bytesPerSecond) {
        throw new KvmRunnerError(`${mode}: no verified run (muxvisor: ${mine.result?.text ?? mine.exitReason}; qemu: ${qemu.result?.text ?? 'no result'})`);
      }
      const ratio = mine.bytesPerSecond / qemu.bytesPerSecond;
      ratios.push(ratio);
      out[`disk.kvmVsQemu.${mode}`] = round(ratio, 3);
      out[`disk.kvm.${mode}.muxvisorKBps`] = round(mine.bytesPerSecond / 1024, 1);
      out[`disk.kvm.${mode}.qemuKBps`] = round(qemu.bytesPerSecond / 1024, 1);
    } finally {
      await r.close();
    }
  }
  out['disk.kvmVsQemu'] = round(Math.sqrt(ratios[0] * ratios[1]), 3);
  return out;
}
