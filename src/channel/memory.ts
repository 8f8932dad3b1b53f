// A guest's DMA memory (GuestMemory) in its three forms: a buffer in this process
// (scripted guests), a shared file the peer maps (hello's dma.path), or the peer's
// memory reached through dmar/dmaw messages. Every form is bounded by its window.

import { type FileHandle, open, realpath } from 'node:fs/promises';
import { sep } from 'node:path';
import type { GuestMemory } from '../guest-link.ts';
import { ProtocolError } from './messages.ts';

function inside(base: number, size: number, addr: number, len: number): boolean {
  return Number.isSafeInteger(addr) && len >= 0 && addr >= base && addr + len <= base + size;
}

/** Memory backed by a buffer: bus address base+x is bytes[x]. */
export function bufferMemory(base: number, bytes: Uint8Array): GuestMemory {
  return {
    base,
    size: bytes.length,
    async read(addr, len) {
      if (!inside(base, bytes.length, addr, len)) return null;
      return bytes.slice(addr - base, addr - base + len);
    },
    async write(addr, data) {
      if (!inside(base, bytes.length, addr, data.length)) return false;
      bytes.set(data, addr - base);
      return true;
    },
  };
}

export interface ClosableMemory extends GuestMemory {
  close(): Promise<void>;
}

/** Directories a peer's dma.path may be in: the file becomes device-writable memory. */
export const DEFAULT_DMA_DIRS = ['/dev/shm'];

/**
 * Open the peer's shared DMA file. Refused (ProtocolError 'refused') when it is outside
 * the allowed directories or smaller than the window.
 */
export async function fileMemory(path: string, base: number, size: number, allowedDirs: readonly string[] = DEFAULT_DMA_DIRS): Promise<ClosableMemory> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (e) {
    throw new ProtocolError('refused', `dma.path ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const allowed = await Promise.all(allowedDirs.map((d) => realpath(d).catch(() => d)));
  if (!allowed.some((d) => real.startsWith(d.endsWith(sep) ? d : d + sep))) {
    throw new ProtocolError('refused', `dma.path ${path} is not in ${allowedDirs.join(' or ')}`);
  }
  let fh: FileHandle;
  try {
    fh = await open(real, 'r+');
  } catch (e) {
    throw new ProtocolError('refused', `dma.path ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const st = await fh.stat();
  if (!st.isFile() || st.size < size) {
    await fh.close();
    throw new ProtocolError('refused', `dma.path ${path} holds ${st.size} bytes, the window needs ${size}`);
  }
  let closed = false;
  return {
    base,
    size,
    async read(addr, len) {
      if (closed || !inside(base, size, addr, len)) return null;
      const buf = Buffer.alloc(len);
      const { bytesRead } = await fh.read(buf, 0, len, addr - base);
      return bytesRead === len ? new Uint8Array(buf.buffer, buf.byteOffset, len) : null;
    },
    async write(addr, data) {
      if (closed || !inside(base, size, addr, data.length)) return false;
      const { bytesWritten } = await fh.write(data, 0, data.length, addr - base);
      return bytesWritten === data.length;
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}

/** Memory reached through the peer's dmar/dmaw answers, bounded by the hello's window. */
export function messageMemory(
  base: number,
  size: number,
  peer: { dmaRead(addr: number, len: number): Promise<Uint8Array | null>; dmaWrite(addr: number, data: Uint8Array): Promise<boolean> },
): GuestMemory {
  return {
    base,
    size,
    read: (addr, len) => (inside(base, size, addr, len) ? peer.dmaRead(addr, len) : Promise.resolve(null)),
    write: (addr, data) => (inside(base, size, addr, data.length) ? peer.dmaWrite(addr, data) : Promise.resolve(false)),
  };
}
