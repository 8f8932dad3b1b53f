// A pcap file writer (the classic libpcap format: a 24-byte global header, then a 16-byte
// record header before each frame; LINKTYPE_ETHERNET, microsecond timestamps, little-endian).
// Buffered; written with synchronous calls so a frame is never reordered or lost to a race
// with close().

import { closeSync, openSync, writeSync } from 'node:fs';

const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 65535;
const FLUSH_BYTES = 64 * 1024;

export class PcapWriter {
  private readonly fd: number;
  private chunks: Uint8Array[] = [];
  private pending = 0;
  frames = 0;

  constructor(
    readonly path: string,
    private readonly now: () => number = () => Math.round((performance.timeOrigin + performance.now()) * 1000), // µs since the epoch
  ) {
    this.fd = openSync(path, 'w');
    const h = Buffer.alloc(24);
    h.writeUInt32LE(0xa1b2c3d4, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeInt32LE(0, 8); // thiszone
    h.writeUInt32LE(0, 12); // sigfigs
    h.writeUInt32LE(SNAPLEN, 16);
    h.writeUInt32LE(LINKTYPE_ETHERNET, 20);
    writeSync(this.fd, h);
  }

  write(frame: Uint8Array): void {
    const us = this.now();
    const r = Buffer.alloc(16);
    r.writeUInt32LE(Math.floor(us / 1e6) >>> 0, 0);
    r.writeUInt32LE(Math.floor(us % 1e6), 4);
    r.writeUInt32LE(frame.length, 8);
    r.writeUInt32LE(frame.length, 12);
    this.chunks.push(r, frame.slice());
    this.pending += 16 + frame.length;
    this.frames++;
    if (this.pending >= FLUSH_BYTES) this.flush();
  }

  flush(): void {
    if (this.pending === 0) return;
    writeSync(this.fd, Buffer.concat(this.chunks));
    this.chunks = [];
    this.pending = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}
