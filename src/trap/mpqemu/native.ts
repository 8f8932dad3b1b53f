// The C side of QEMU's multi-process protocol (native/mpqemu/addon.c): Node cannot pass
// descriptors over a socket (SCM_RIGHTS), watch a socket without reading it, or map a file.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MPQEMU_ADDON = resolve(dirname(fileURLToPath(import.meta.url)), '../../../native/mpqemu/build/muxvisor_mpqemu.node');

/** watch() callback status: a message, or how the stream ended (negative: -errno of recvmsg). */
export const WATCH_MESSAGE = 0;
export const WATCH_EOF = 1;
/** The peer closed in the middle of a message. */
export const WATCH_TRUNCATED = 2;
/** A header announced a body larger than any message; `bytes` holds the header. */
export const WATCH_OVERSIZE = 3;
/** Message flags: more descriptors than a message may carry (the kernel closed the rest). */
export const FLAG_CTRUNC = 1;
/** Descriptors arrived with the body, not with the header. */
export const FLAG_FDS_IN_BODY = 2;

/** An opaque handle of a watched socket. */
export type WatchHandle = { readonly __brand: 'mpqemu-watch' };

export type WatchCallback = (status: number, bytes: Buffer | null, fds: number[], flags: number) => void;

export interface MpqemuAddon {
  /** AF_UNIX stream pair, both ends close-on-exec: [ours, theirs]. */
  socketpair(): [number, number];
  /** Frames messages off `fd` on Node's loop; the handle owns `fd` from here on. */
  watch(fd: number, cb: WatchCallback): WatchHandle;
  pause(handle: WatchHandle, paused: boolean): void;
  /** Stops watching and closes the fd; idempotent. */
  unwatch(handle: WatchHandle): void;
  /** One message (header and body in `bytes`) with its descriptors; throws with code EAGAIN/EPIPE/... */
  send(fd: number, bytes: Buffer, fds?: number[]): void;
  /** MAP_SHARED read-write of `size` bytes of a regular file from `offset` (size at most 2^31). */
  mapFd(fd: number, offset: number, size: number, requireSeal: boolean): ArrayBuffer;
  unmap(buffer: ArrayBuffer): boolean;
  eventfd(): number;
  eventfdWrite(fd: number, n: number): void;
  /** The counter (reset to 0), or 0 when nothing is pending; never waits. */
  eventfdRead(fd: number): number;
  close(fd: number): void;
}

let addon: MpqemuAddon | null | undefined;

/** Why the addon cannot be used, or null when it is built. */
export function mpqemuAddonMissing(): string | null {
  return existsSync(MPQEMU_ADDON) ? null : `${MPQEMU_ADDON} is not built (make -C native/mpqemu; npm install builds it)`;
}

/** The addon; throws with the reason when it is not built. */
export function mpqemuAddon(): MpqemuAddon {
  if (addon) return addon;
  const why = mpqemuAddonMissing();
  if (why) throw new Error(`mpqemu: ${why}`);
  addon = createRequire(import.meta.url)(MPQEMU_ADDON) as MpqemuAddon;
  return addon;
}
