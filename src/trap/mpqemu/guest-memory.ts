// A guest QEMU's RAM as SYNC_SYSMEM hands it over: up to seven sections, each a range of
// guest-physical addresses backed by (fd, offset). Every SYNC_SYSMEM replaces the whole
// set: the previous mappings are unmapped and the previous fds closed. Devices reach it
// as their DMA port, by guest physical address (bus address = guest physical under QEMU's
// `pc` machine, which has no IOMMU here).

import type { DmaPort } from '../../device.ts';
import { MpqemuMalformed, MPQEMU_MAX_FDS, type SyncSysmemMsg } from './codec.ts';
import { mpqemuAddon, type MpqemuAddon } from './native.ts';

/** One mapping is at most this long (Node's typed arrays stop short of 4 GiB); larger sections are mapped in pieces. */
const CHUNK = 2 ** 30;

export interface RamSection {
  gpa: number;
  size: number;
  /** Offset of the section in its fd. */
  offset: number;
  fd: number;
}

interface Chunk {
  gpa: number;
  bytes: Uint8Array;
}

export interface GuestMemoryOptions {
  /**
   * Refuse RAM fds that are not sealed against shrinking (default true): a guest QEMU that
   * shrank an unsealed file under our mapping would turn the next DMA into SIGBUS in the
   * supervisor. memory-backend-memfd seals by default (its `seal` property).
   */
  requireSeal?: boolean;
}

/** Numbers from a SYNC_SYSMEM slot, checked: the sections to map. Throws MpqemuMalformed('bad-memory'). */
export function sectionsOf(msg: SyncSysmemMsg): RamSection[] {
  const out: RamSection[] = [];
  const limit = BigInt(Number.MAX_SAFE_INTEGER);
  for (let i = 0; i < msg.fds.length && i < MPQEMU_MAX_FDS; i++) {
    const gpa = msg.gpas[i], size = msg.sizes[i], offset = msg.offsets[i];
    if (size === 0n || gpa + size > limit || offset < 0n || offset + size > limit) {
      throw new MpqemuMalformed('bad-memory', `SYNC_SYSMEM section ${i}: gpa 0x${gpa.toString(16)} size 0x${size.toString(16)} offset ${offset} is not a usable range`);
    }
    out.push({ gpa: Number(gpa), size: Number(size), offset: Number(offset), fd: msg.fds[i] });
  }
  return out;
}

export class GuestMemory implements DmaPort {
  private readonly addon: MpqemuAddon;
  private chunks: Chunk[] = [];
  private held: RamSection[] = [];
  /** DMA that reached bytes no section backs (counted, refused). */
  refused = 0;

  constructor(private readonly options: GuestMemoryOptions = {}) {
    this.addon = mpqemuAddon();
  }

  /** The sections mapped now (fds owned by this object until the next replace or close). */
  sections(): readonly RamSection[] {
    return this.held;
  }

  /**
   * Maps a new set of sections and drops the old one (unmapped, fds closed). Takes
   * ownership of the new fds even when it throws (MpqemuMalformed 'bad-memory': a section
   * its fd cannot back), and then holds no memory at all.
   */
  replace(sections: RamSection[]): void {
    this.release();
    const chunks: Chunk[] = [];
    try {
      for (const s of sections) {
        for (let at = 0; at < s.size; at += CHUNK) {
          const len = Math.min(CHUNK, s.size - at);
          chunks.push({ gpa: s.gpa + at, bytes: new Uint8Array(this.addon.mapFd(s.fd, s.offset + at, len, this.options.requireSeal ?? true)) });
        }
      }
    } catch (err) {
      for (const c of chunks) this.addon.unmap(c.bytes.buffer as ArrayBuffer);
      for (const s of sections) this.addon.close(s.fd);
      const what = sections.map((s) => `0x${s.gpa.toString(16)}+0x${s.size.toString(16)}`).join(', ');
      throw new MpqemuMalformed('bad-memory', `guest RAM (${what}) cannot be mapped: ${(err as Error).message}`);
    }
    this.chunks = chunks.sort((a, b) => a.gpa - b.gpa);
    this.held = sections;
  }

  /** Unmaps everything and closes the fds. */
  close(): void {
    this.release();
  }

  /** A copy of guest memory, or null when some byte of the range is not RAM. */
  readSync(addr: number, len: number): Uint8Array | null {
    const out = new Uint8Array(len);
    return this.walk(addr, len, (c, off, n, done) => out.set(c.bytes.subarray(off, off + n), done)) ? out : null;
  }

  /** Writes guest memory; false (nothing written) when some byte of the range is not RAM. */
  writeSync(addr: number, data: Uint8Array): boolean {
    if (!this.walk(addr, data.length, () => {})) return false;
    return this.walk(addr, data.length, (c, off, n, done) => c.bytes.set(data.subarray(done, done + n), off));
  }

  async read(addr: number, len: number): Promise<Uint8Array | null> {
    return this.readSync(addr, len);
  }

  async write(addr: number, data: Uint8Array): Promise<boolean> {
    return this.writeSync(addr, data);
  }

  /** Visits the pieces of [addr, addr+len) in order; false (and counted) when a byte is not backed. */
  private walk(addr: number, len: number, visit: (c: Chunk, off: number, n: number, done: number) => void): boolean {
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len < 0) return this.refuse();
    let done = 0;
    while (done < len) {
      const at = addr + done;
      const c = this.chunks.find((k) => at >= k.gpa && at < k.gpa + k.bytes.length);
      if (!c) return this.refuse();
      const off = at - c.gpa;
      const n = Math.min(len - done, c.bytes.length - off);
      visit(c, off, n, done);
      done += n;
    }
    return true;
  }

  private refuse(): false {
    this.refused++;
    return false;
  }

  private release(): void {
    for (const c of this.chunks) this.addon.unmap(c.bytes.buffer as ArrayBuffer);
    for (const s of this.held) this.addon.close(s.fd);
    this.chunks = [];
    this.held = [];
  }
}
