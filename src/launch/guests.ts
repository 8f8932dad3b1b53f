// Starts the guests a config describes when `muxvisor run` serves it: each guest's `run`
//   scripted {driver: 'ata' | module path, options}  an in-process driver on the local guest path
//   user {argv, env?, cwd?}                          an unmodified program under the trap shim,
//                                                    handed a one-time token (MUXVISOR_TOKEN) that
//                                                    opens its guest once (src/channel/peer-auth.ts)
//   kvm {image, memoryMiB?, options.cmdline?}        a KVM guest (N-API runner, in process)
//   qemu {kernel?, initrd?, append?, memMiB?, ...}   an unmodified OS in its own QEMU, the disk
//                                                    or NIC served over x-pci-proxy-dev (qemu.ts)
// Guests without `run` are left to connect themselves (`muxvisor exec`, a KVM helper, ...).

import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Supervisor } from '../supervisor.ts';
import { launchKvm } from './kvm.ts';
import type { LaunchedGuest } from './outcome.ts';
import { launchQemu } from './qemu.ts';
import { launchScripted } from './scripted.ts';
import { launchUser } from './user.ts';

/** Start every guest of `config` that has a `run`; `socket` is where user-mode guests connect. */
export async function launchGuests(sup: Supervisor, config: Config, socket: string, log: Logger): Promise<LaunchedGuest[]> {
  const out: LaunchedGuest[] = [];
  for (const [i, g] of config.guests.entries()) {
    const run = g.run;
    if (!run) continue;
    const where = `guests[${i}]`;
    let l: LaunchedGuest;
    if (run.type === 'scripted') l = launchScripted(sup, g, run, where);
    else if (run.type === 'user') l = await launchUser(sup, socket, g, run);
    else if (run.type === 'qemu') l = await launchQemu(sup, g, run, where, socket, log);
    else l = await launchKvm(sup, g, run);
    log.info({ guest: g.name, run: run.type }, 'guest started');
    void l.done.then((o) => (o.ok ? log.info(o, 'guest finished') : log.error(o, 'guest failed')));
    out.push(l);
  }
  return out;
}
