// Running a KVM guest to the end, in either mode: the helper process (kvm-process.ts,
// native/kvm/build/muxvisor-kvm) or in the supervisor's process (kvm-inproc.ts, the N-API
// addon). The entry point for callers that do not care which; it re-exports the shared types.

import type { AttachLocal } from './kvm-inproc.ts';
import type { KvmGuestOptions, KvmGuestResult } from './kvm-guest.ts';
import { startKvmGuest } from './kvm-process.ts';

export * from './kvm-guest.ts';
export { startKvmGuest } from './kvm-process.ts';

export interface RunKvmGuestOptions extends KvmGuestOptions {
  /**
   * In-process mode: the supervisor's attachLocalGuest (bound). The guest then runs in
   * this process through the N-API addon and each exit is answered without a socket;
   * `connect` is ignored. Without it, a helper process speaks the channel protocol.
   */
  attach?: AttachLocal;
}

/**
 * Boots one KVM guest to the end (`demo --trap kvm`, the bench, tests). Resolves when the
 * guest stops; `verified` is true when it reported `RESULT ok` after checking its data.
 */
export async function runKvmGuest(opts: RunKvmGuestOptions): Promise<KvmGuestResult> {
  if (opts.attach) {
    // Loaded on demand: a helper-process run needs none of the addon's module.
    const { startKvmGuestInProcess } = await import('./kvm-inproc.ts');
    return startKvmGuestInProcess({ ...opts, attach: opts.attach }).done;
  }
  return startKvmGuest(opts).done;
}
