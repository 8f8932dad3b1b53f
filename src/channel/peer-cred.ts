// Who is at the other end of a channel connection, as the kernel says: SO_PEERCRED on a
// Unix socket names the process that connected, its uid and gid. And that process's file
// descriptors, opened for the supervisor without ever opening what a peer names by path
// (native/shm/addon.c openPeerFd). Over TCP, or without the addon, nobody can tell: such a
// peer is known by a token only (peer-auth.ts) and shares no memory (dma-memory.ts).

import type { Socket } from 'node:net';
import { SHM_ADDON, shmAddon, socketFd } from './slot.ts';

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

/** The peer's credentials, or why nobody can tell them. */
export type PeerIdentity = PeerCred | { unknown: string };

/** A peer's descriptor opened for this process: `fd` is ours to close. */
export interface OpenedPeerFd extends PeerCred {
  fd: number;
  /** F_GET_SEALS of the file, -1 when it cannot carry seals (not a memfd). */
  seals: number;
}

/** memfd seals (linux/fcntl.h F_SEAL_*). */
export const SEAL = { SEAL: 1, SHRINK: 2, GROW: 4, WRITE: 8, FUTURE_WRITE: 16 } as const;

interface PeerAddon {
  peerCred(fd: number): PeerCred;
  openPeerFd(socketFd: number, fd: number): OpenedPeerFd;
  memfd(name: string, size: number, seals: number): number;
}

function addon(): PeerAddon | null {
  // The slot's addon carries these functions too (one .node per concern would be one more build).
  return shmAddon() as unknown as PeerAddon | null;
}

export function isKnown(p: PeerIdentity): p is PeerCred {
  return !('unknown' in p);
}

/** "uid 1000 (pid 42)" or "uid unknown: <why>", for logs and refusals. */
export function describePeer(p: PeerIdentity): string {
  return isKnown(p) ? `uid ${p.uid}, pid ${p.pid}` : `uid unknown: ${p.unknown}`;
}

/** A TCP socket has a remote address; a Unix one has none. */
function isTcp(socket: Socket): boolean {
  return socket.remoteAddress !== undefined;
}

/** The kernel's word on who connected on `socket` (SO_PEERCRED). */
export function peerIdentity(socket: Socket): PeerIdentity {
  if (isTcp(socket)) return { unknown: 'a TCP peer has no credentials the kernel can tell' };
  const a = addon();
  if (!a) return { unknown: `addon ${SHM_ADDON} not built (make -C native/shm)` };
  const fd = socketFd(socket);
  if (fd === null) return { unknown: 'the socket has no file descriptor to ask' };
  try {
    const c = a.peerCred(fd);
    return c.pid > 0 ? { pid: c.pid, uid: c.uid, gid: c.gid } : { unknown: 'SO_PEERCRED names no process' };
  } catch (e) {
    return { unknown: (e as Error).message };
  }
}

/**
 * The peer's descriptor number `fd`, opened read-write for this process: only an anonymous
 * regular file (a memfd) is opened at all, through an O_PATH descriptor checked first, so no
 * FIFO, device, symbolic link or file with a name is ever opened on a peer's word. Throws
 * Error with the reason.
 */
export function openPeerFd(socket: Socket, fd: number): OpenedPeerFd {
  if (isTcp(socket)) throw new Error('a TCP peer cannot share memory');
  if (!Number.isSafeInteger(fd) || fd < 0 || fd > 0x7fff_ffff) throw new Error('not a descriptor number (a uint)');
  const a = addon();
  if (!a) throw new Error(`addon ${SHM_ADDON} not built (make -C native/shm)`);
  const sfd = socketFd(socket);
  if (sfd === null) throw new Error('the socket has no file descriptor to ask for its peer');
  return a.openPeerFd(sfd, fd);
}

/**
 * A new memfd of `size` bytes in this process with `seals` added (SEAL bits): DMA memory a
 * TypeScript peer offers (PeerClient's `dmaFd`), and tests. Throws without the addon.
 */
export function memfdCreate(name: string, size: number, seals: number): number {
  const a = addon();
  if (!a) throw new Error(`addon ${SHM_ADDON} not built (make -C native/shm)`);
  return a.memfd(name, size, seals);
}
