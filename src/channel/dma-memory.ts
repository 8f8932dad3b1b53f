// A socket guest's shared DMA memory (PROTOCOL.md "DMA memory"): a memfd of the peer's own,
// offered by its descriptor number in the hello (`dma.fd`), never by a path. The supervisor
// opens it through the peer's /proc/PID/fd (PID from SO_PEERCRED: a peer can offer only
// what it holds) without opening anything but an anonymous regular file (peer-cred.ts), then
// holds the opened descriptor to these rules, checked on that descriptor, never on a name:
//   - a memfd sealed against shrinking (F_SEAL_SHRINK: the window stays backed) and not
//     against writing (the device writes into it);
//   - owned by the peer's uid (a memfd of another user's, passed along, is not the peer's);
//   - at least as large as the window the hello announces;
//   - nobody else's DMA memory: one memfd (st_dev/st_ino) is one guest's.
// Anything else is refused (ProtocolError 'refused' with the reason; the caller counts and
// logs it). Bytes move by pread/pwrite on the held descriptor: nothing is mapped, so no
// truncation can fault the supervisor.

import { closeSync, fstatSync, readSync, writeSync } from 'node:fs';
import type { ClosableMemory } from './memory.ts';
import { ProtocolError } from './messages.ts';
import { type OpenedPeerFd, SEAL } from './peer-cred.ts';

export interface DmaOffer {
  /** The peer's descriptor number (-1: the hello's field was not a uint). */
  fd: number;
  base: number;
  size: number;
}

/** Which guest holds each memfd as its DMA memory, by "st_dev:st_ino". */
export class DmaMemfds {
  private readonly owners = new Map<string, string>();

  ownerOf(key: string): string | undefined {
    return this.owners.get(key);
  }

  claim(key: string, guest: string): void {
    this.owners.set(key, guest);
  }

  release(key: string, guest: string): void {
    if (this.owners.get(key) === guest) this.owners.delete(key);
  }

  get size(): number {
    return this.owners.size;
  }
}

/** A refused offer; `holder`: the guest whose DMA memory the memfd already is (for the log only). */
export class DmaRefusal extends ProtocolError {
  constructor(
    detail: string,
    readonly holder?: string,
  ) {
    super('refused', detail);
  }
}

function refused(offer: DmaOffer, why: string, holder?: string): never {
  throw new DmaRefusal(`hello.dma.fd ${offer.fd}: ${why}`, holder);
}

/** Why `opened` may not be `guest`'s DMA memory for `offer`, or null when it may. */
function unfit(opened: OpenedPeerFd, st: { uid: number; size: number }, offer: DmaOffer, other: string | undefined, guest: string): string | null {
  if (opened.seals < 0) return 'is not a memfd (it cannot carry seals)';
  if (!(opened.seals & SEAL.SHRINK)) return 'is a memfd not sealed against shrinking (F_SEAL_SHRINK): the peer could truncate it under the supervisor';
  if (opened.seals & (SEAL.WRITE | SEAL.FUTURE_WRITE)) return 'is a memfd sealed against writing: the device could not write into it';
  if (st.uid !== opened.uid) return `belongs to uid ${st.uid}, and the peer runs as uid ${opened.uid}`;
  if (st.size < offer.size) return `holds ${st.size} bytes; the window announces ${offer.size}`;
  // Not named to the peer: which guest holds it is none of its business (the log says).
  if (other !== undefined) return `is already the DMA memory of ${other === guest ? 'this guest (another connection)' : 'another guest'}`;
  return null;
}

/**
 * Holds the peer's memfd (opened by `open`, peer-cred.ts openPeerFd) as `guest`'s DMA memory:
 * bus address base+x is byte x. Claimed in `memfds` until closed. Throws ProtocolError
 * 'refused' naming what is wrong.
 */
export function openDmaMemfd(offer: DmaOffer, guest: string, memfds: DmaMemfds, open: (fd: number) => OpenedPeerFd): ClosableMemory {
  const { base, size } = offer;
  if (offer.fd < 0) refused(offer, 'not a descriptor number (a uint)');
  if (size < 1) refused(offer, 'the window is empty (dma.size 0)');
  if (!Number.isSafeInteger(base + size)) refused(offer, `the window ${base}+${size} ends beyond 2^53`);
  let opened: OpenedPeerFd;
  try {
    opened = open(offer.fd);
  } catch (e) {
    return refused(offer, (e as Error).message);
  }
  const fd = opened.fd;
  let key: string;
  try {
    const st = fstatSync(fd, { bigint: true });
    key = `${st.dev}:${st.ino}`;
    const holder = memfds.ownerOf(key);
    const why = unfit(opened, { uid: Number(st.uid), size: Number(st.size) }, offer, holder, guest);
    if (why) refused(offer, why, holder);
  } catch (e) {
    closeSync(fd);
    throw e instanceof ProtocolError ? e : new DmaRefusal(`hello.dma.fd ${offer.fd}: fstat: ${(e as Error).message}`);
  }
  memfds.claim(key, guest);
  return heldMemory(fd, base, size, () => memfds.release(key, guest));
}

function inside(base: number, size: number, addr: number, len: number): boolean {
  return Number.isSafeInteger(addr) && len >= 0 && addr >= base && addr + len <= base + size;
}

/** pread/pwrite on a descriptor we hold, bounded by the window; closed once. */
function heldMemory(fd: number, base: number, size: number, released: () => void): ClosableMemory {
  let closed = false;
  return {
    base,
    size,
    async read(addr, len) {
      if (closed || !inside(base, size, addr, len)) return null;
      const buf = Buffer.alloc(len);
      try {
        return readSync(fd, buf, 0, len, addr - base) === len ? new Uint8Array(buf.buffer, buf.byteOffset, len) : null;
      } catch {
        return null;
      }
    },
    async write(addr, data) {
      if (closed || !inside(base, size, addr, data.length)) return false;
      try {
        return writeSync(fd, data, 0, data.length, addr - base) === data.length;
      } catch {
        return false;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      closeSync(fd);
      released();
    },
  };
}
