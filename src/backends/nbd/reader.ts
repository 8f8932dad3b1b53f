// Exact-length reads from a stream socket: the NBD handshake and reply loop read fixed-size
// headers and known payload lengths, one reader at a time.

import type { Socket } from 'node:net';

export class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private ended: Error | null = null;

  constructor(sock: Socket, private readonly describe: () => string) {
    sock.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      this.serve();
    });
    sock.on('error', (e) => this.end(e));
    sock.on('close', () => this.end(new Error(`connection closed by ${this.describe()}`)));
  }

  private end(e: Error): void {
    if (this.ended) return;
    this.ended = e;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(e);
  }

  private serve(): void {
    const w = this.waiter;
    if (!w || this.buffered < w.n) return;
    this.waiter = null;
    w.resolve(this.take(w.n));
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first.length < n) this.chunks = [Buffer.concat(this.chunks)]; // only when a read spans chunks
    const head = this.chunks[0];
    const out = head.subarray(0, n);
    if (head.length === n) this.chunks.shift();
    else this.chunks[0] = head.subarray(n);
    this.buffered -= n;
    return out;
  }

  read(n: number): Promise<Buffer> {
    if (this.waiter) return Promise.reject(new Error('SocketReader: concurrent read'));
    if (this.buffered >= n) return Promise.resolve(this.take(n));
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
    });
  }
}
