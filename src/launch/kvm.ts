// `run: {type: 'kvm', image, memoryMiB?, options.cmdline?}`: a multiboot kernel in a KVM VM
// run in this process through the N-API addon (src/trap/kvm-inproc.ts).

import type { GuestConfig } from '../config/schema.ts';
import type { Supervisor } from '../supervisor.ts';
import type { LaunchedGuest } from './outcome.ts';

export async function launchKvm(sup: Supervisor, g: GuestConfig, run: { image: string; memoryMiB?: number; options?: Record<string, unknown> }): Promise<LaunchedGuest> {
  const { kvmGuestOptionsFromRun } = await import('../trap/kvm.ts');
  const { startKvmGuestInProcess } = await import('../trap/kvm-inproc.ts');
  const handle = startKvmGuestInProcess({ ...kvmGuestOptionsFromRun(g.name, run), attach: sup.attachLocalGuest.bind(sup) });
  const done = handle.done.then(
    (r) => ({ guest: g.name, how: 'kvm' as const, ok: r.exitReason === 'hlt' && (r.result === null || r.result === undefined || r.verified), detail: `${r.exitReason}${r.result ? `, ${r.verified ? 'verified' : 'NOT verified'}` : ''}` }),
    (e: Error) => ({ guest: g.name, how: 'kvm' as const, ok: false, detail: e.message }),
  );
  return { name: g.name, done, stop: () => handle.kill() };
}
