// A small supervisor stand-in for testing the user-mode trap shim: it speaks the channel
// protocol (src/channel/PROTOCOL.md) through the real codec and validator, answers each
// access with a callback, and can send irq/dmar/dmaw itself. With `slot` it accepts the
// shim's shared-memory access slot (src/channel/slot.ts) and answers accesses there.
// Also a fake conf1 PCI configuration space (ports 0xCF8/0xCFC) for lspci.

import { closeSync, fstatSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame, FrameDecoder } from '../../src/channel/codec.ts';
import { type AccMsg, accessToAcc, type HelloMsg, type PeerMessage, validatePeerMessage } from '../../src/channel/messages.ts';
import { AccessSlot, SlotPoller } from '../../src/channel/slot.ts';
import { openPeerFd } from '../../src/channel/peer-cred.ts';

export interface PeerConn {
  hello: HelloMsg;
  /** The peer's DMA memfd (hello.dma.fd), opened as the supervisor opens it (peer-cred.ts). */
  dmaFd: number | null;
  /** "st_dev:st_ino" of that memfd (the fd is closed with the connection). */
  dmaInode: string | null;
  socket: Socket;
  send(msg: Record<string, unknown>): void;
  /** Resolves with the next dmad/dmak the shim sends. */
  nextDmaAnswer(): Promise<PeerMessage>;
}

export interface AccAnswer {
  v?: number | bigint;
  b?: Uint8Array;
  e?: string;
}

export type AccessHandler = (acc: AccMsg, conn: PeerConn) => AccAnswer | Promise<AccAnswer>;

export class TrapPeer {
  readonly conns: PeerConn[] = [];
  readonly accesses: AccMsg[] = [];
  readonly protocolErrors: string[] = [];
  readonly closed: Promise<void>[] = [];

  private constructor(
    readonly path: string,
    private readonly server: Server,
    private readonly dir: string,
  ) {}

  /** Accesses that came through the access slot rather than as `acc` frames. */
  slotAccesses = 0;
  private readonly poller = new SlotPoller(100);

  static async start(onAccess: AccessHandler, irqs: number[] = [14], opts: { slot?: boolean } = {}): Promise<TrapPeer> {
    const dir = mkdtempSync(join(tmpdir(), 'muxtrap-peer-'));
    const path = join(dir, 'sock');
    const server = createServer();
    const peer = new TrapPeer(path, server, dir);
    server.on('connection', (socket) => peer.serve(socket, onAccess, irqs, opts.slot ?? false));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return peer;
  }

  private kick(): void {
    this.poller.kick((_s, e) => this.protocolErrors.push((e as Error).message));
  }

  private serve(socket: Socket, onAccess: AccessHandler, irqs: number[], useSlot: boolean): void {
    const decoder = new FrameDecoder(validatePeerMessage);
    let conn: PeerConn | null = null;
    let slot: AccessSlot | null = null;
    let sent = 0;
    const waiters: ((m: PeerMessage) => void)[] = [];
    const send = (msg: Record<string, unknown>): void => {
      sent++;
      slot?.noteSent(sent); // before the write, as the supervisor does
      socket.write(encodeFrame(msg));
    };
    // Accesses are answered in order, one at a time, like a stalled guest's would be.
    let chain = Promise.resolve();
    socket.setNoDelay?.(true);
    this.closed.push(new Promise((resolve) => socket.once('close', () => resolve())));
    socket.on('data', (chunk) => {
      let msgs: PeerMessage[];
      try {
        msgs = decoder.push(chunk);
      } catch (e) {
        this.protocolErrors.push((e as Error).message);
        socket.destroy();
        return;
      }
      for (const m of msgs) {
        if (m.t === 'hello') {
          if (m.dma?.path !== undefined) this.protocolErrors.push(`hello.dma.path ${m.dma.path}: DMA memory by name`);
          const dmaFd = m.dma?.fd !== undefined ? openPeerFd(socket, m.dma.fd).fd : null;
          if (dmaFd !== null) socket.once('close', () => closeSync(dmaFd));
          const st = dmaFd !== null ? fstatSync(dmaFd) : null;
          conn = { hello: m, dmaFd, dmaInode: st ? `${st.dev}:${st.ino}` : null, socket, send, nextDmaAnswer: () => new Promise((resolve) => waiters.push(resolve)) };
          this.conns.push(conn);
          const c = conn;
          if (useSlot && m.slot) {
            const { buf, shm } = AccessSlot.open(socket, m.slot.fd, m.slot.size);
            let seq = 0;
            slot = new AccessSlot(buf, shm, (acc, answer) => {
              const msg = accessToAcc(++seq, acc);
              this.accesses.push(msg);
              this.slotAccesses++;
              // Always answered later (a microtask at least): the stalled-answer path.
              void Promise.resolve(onAccess(msg, c)).then((a) => {
                answer({ value: a.v ?? 0, ...(a.b ? { data: a.b } : {}), ...(a.e !== undefined ? { error: a.e } : {}) });
                this.kick();
              });
            });
            this.poller.add(slot);
            const s = slot;
            socket.once('close', () => (this.poller.remove(s), s.close()));
          }
          send({ t: 'welcome', v: 1, guest: m.guest, irqs, ...(slot ? { slot: 1 } : {}) });
        } else if (m.t === 'ring') {
          this.kick();
        } else if (m.t === 'acc') {
          if (!conn) {
            this.protocolErrors.push('acc before hello');
            continue;
          }
          this.accesses.push(m);
          const c = conn;
          chain = chain.then(async () => {
            const a = await onAccess(m, c);
            send({ t: 'rep', id: m.id, v: a.v ?? 0, b: a.b, e: a.e });
          });
        } else if (m.t === 'dmad' || m.t === 'dmak') {
          waiters.shift()?.(m);
        } else if (m.t === 'bye') {
          socket.end();
        }
      }
    });
    socket.on('error', () => {});
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One PCI function of the fake configuration space. */
export interface FakeFunction {
  bus: number;
  dev: number;
  fn: number;
  vendor: number;
  device: number;
  classCode: number; // class << 16 | subclass << 8 | prog-if
  headerType?: number; // bit 7: multi-function
  bars?: number[];
}

/** Answers conf1 accesses (0xCF8 address latch, 0xCFC..0xCFF data) from `functions`. */
export function fakeConf1(functions: FakeFunction[]): (acc: AccMsg) => AccAnswer | null {
  const spaces = new Map<number, Buffer>();
  for (const f of functions) {
    const cfg = Buffer.alloc(256);
    cfg.writeUInt16LE(f.vendor, 0x00); // PCI_VENDOR_ID
    cfg.writeUInt16LE(f.device, 0x02); // PCI_DEVICE_ID
    cfg.writeUInt32LE((f.classCode << 8) >>> 0, 0x08); // PCI_CLASS_REVISION (revision 0)
    cfg[0x0e] = f.headerType ?? 0; // PCI_HEADER_TYPE
    (f.bars ?? []).forEach((b, i) => cfg.writeUInt32LE(b >>> 0, 0x10 + 4 * i)); // PCI_BASE_ADDRESS_n
    spaces.set((f.bus << 8) | (f.dev << 3) | f.fn, cfg);
  }
  let latch = 0;
  return (acc) => {
    if (acc.sp !== 'pio') return null;
    if (acc.a === 0xcf8 && acc.s === 4) {
      if (acc.d === 'w') latch = Number(acc.v ?? 0) >>> 0;
      return { v: latch };
    }
    if (acc.a < 0xcfc || acc.a + acc.s > 0xd00) return null;
    const off = (latch & 0xfc) + (acc.a - 0xcfc);
    const cfg = latch & 0x8000_0000 ? spaces.get((latch >>> 8) & 0xffff) : undefined;
    if (acc.d === 'w') return { v: 0 };
    if (!cfg) return { v: acc.s === 4 ? 0xffff_ffff : acc.s === 2 ? 0xffff : 0xff };
    return { v: acc.s === 4 ? cfg.readUInt32LE(off) : acc.s === 2 ? cfg.readUInt16LE(off) : cfg[off] };
  };
}
