// Cost of one trapped port read in a user-mode driver process (native/trap):
//  - trap.user.floorUs: a bare SIGSEGV trap whose `inb` the shim answers itself
//    (MUXVISOR_LOCAL_ECHO=1): the floor every trapped access pays;
//  - trap.user.muxUs: a trapped `inb` on a granted port answered by a running supervisor
//    through the shared-memory access slot (scratch device, pass-through router);
//  - trap.user.socketMuxUs: the same over the channel socket (MUXVISOR_SLOT=0).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/load.ts';
import { Supervisor } from '../supervisor.ts';
import { runTrapped, TRAP_BUILD_DIR, type TrapOptions } from '../trap/user.ts';

const BENCH = join(TRAP_BUILD_DIR, 'bench-inb');

async function nsPerInb(port: number, count: number, warmup: number, opts: TrapOptions): Promise<number> {
  const r = await runTrapped(BENCH, ['0x' + port.toString(16), String(count), String(warmup)], opts);
  if (r.code !== 0) throw new Error(`bench-inb under the trap shim failed (exit ${r.code ?? r.signal}): ${r.stderr.trim()}`);
  const out = JSON.parse(r.stdout) as { nsPerInb: number };
  return out.nsPerInb;
}

const round = (us: number): number => Math.round(us * 100) / 100;

export async function run(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const count = opts.quick ? 2000 : 20000;
  const floorNs = await nsPerInb(0x80, count * 5, count, { localEcho: true });

  const dir = mkdtempSync(join(tmpdir(), 'muxvisor-bench-trap-'));
  const socket = join(dir, 'sock');
  const config = parseConfig({
    socket,
    devices: [{ id: 'scr', kind: 'scratch' }],
    guests: [{ name: 'bench', grants: [{ device: 'scr' }] }],
  });
  const sup = new Supervisor({ config });
  try {
    await sup.listen();
    const regs = sup.layout().find((d) => d.id === 'scr')?.regions.find((r) => r.space === 'pio');
    if (!regs) throw new Error('bench trap-user: the scratch device has no port region');
    // The warm-up lets the supervisor's JIT settle before timing.
    const socketNs = await nsPerInb(regs.start, count, 3000, { socket, guest: 'bench', dmaSize: 0, slot: false });
    const muxNs = await nsPerInb(regs.start, count * 5, 3000, { socket, guest: 'bench', dmaSize: 0 });
    return {
      'trap.user.floorUs': round(floorNs / 1000),
      'trap.user.muxUs': round(muxNs / 1000),
      'trap.user.socketMuxUs': round(socketNs / 1000),
      'trap.user.muxOverFloor': round(muxNs / floorNs),
    };
  } finally {
    await sup.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
