// A hostile peer for the flood bench and test (src/bench/flood.ts, test/channel-flood.test.ts):
// a separate process that tries to make the supervisor hold memory. Run as
//   node --import tsx src/bench/flood/peer.ts <socket> <mode> <guest> [n]
// and prints one JSON line when its flood is in place ({"ready": true, ...}), then keeps its
// connections open until killed (FLOOD_WAIT=1: it loads, says {"loaded": true} and floods on
// a line on stdin). Modes:
//   reads       hello as <guest>, then string reads of the largest legal size (64 KiB of
//               reply each) of a port it is not granted, written as fast as the socket takes
//               them and never a reply read (n: how many to try)
//   big         hello, then one string read asking for 1 MiB (over the per-access limit)
//   halfframes  n connections that each announce the largest first frame and send half of
//               it, and n that announce a 1 MiB frame and send 512 KiB
//   halfafter   hello as <guest>, then announce the largest frame and send half of it
//   connects    n simultaneous connects that never say anything (counts those refused)

import { type Socket, connect } from 'node:net';
import { encodeFrame } from '../../channel/codec.ts';
import { MAX_FRAME, MAX_HELLO_FRAME, MAX_STRING_BYTES } from '../../channel/messages.ts';

const [socketPath, mode, guest = 'mallory', nArg] = process.argv.slice(2);
const n = Number(nArg ?? 0);
/** A port the hostile guest is not granted (the ATA data port). */
const PORT = 0x1f0;
const keep: Socket[] = [];

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath);
    s.once('connect', () => {
      s.removeListener('error', reject);
      s.on('error', () => undefined); // the supervisor closes us: expected
      keep.push(s);
      resolve(s);
    });
    s.once('error', reject);
  });
}

function hello(s: Socket): void {
  s.write(encodeFrame({ t: 'hello', v: 1, guest, caps: ['pio', 'string'] }));
}

/** Writes until the socket stops taking (the supervisor stopped reading), or `count` frames. */
async function writeUntilBlocked(s: Socket, frame: Buffer, count: number): Promise<{ written: number; blocked: boolean }> {
  let written = 0;
  while (written < count && !s.destroyed) {
    written++;
    if (!s.write(frame)) {
      const drained = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 2000);
        s.once('drain', () => (clearTimeout(t), resolve(true)));
      });
      if (!drained) return { written, blocked: true };
    }
  }
  return { written, blocked: false };
}

function header(len: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32LE(len);
  return h;
}

async function main(): Promise<Record<string, unknown>> {
  switch (mode) {
    case 'reads': {
      const s = await open();
      s.pause(); // never read a reply
      hello(s);
      const count = MAX_STRING_BYTES / 2;
      const frame = encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: PORT, s: 2, d: 'r', n: count });
      return { mode, ...(await writeUntilBlocked(s, frame, n || 100_000)), replyBytesAsked: count * 2 };
    }
    case 'big': {
      const s = await open();
      s.resume(); // read, so that the supervisor's close is seen
      hello(s);
      s.write(encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: PORT, s: 2, d: 'r', n: 512 * 1024 }));
      const closed = await new Promise<boolean>((resolve) => {
        s.once('close', () => resolve(true));
        setTimeout(() => resolve(false), 5000);
      });
      return { mode, closedBySupervisor: closed };
    }
    case 'halfframes': {
      let refused = 0;
      const one = async (len: number) => {
        try {
          const s = await open();
          s.write(Buffer.concat([header(len), Buffer.alloc(Math.floor(len / 2), 0xa5)]));
        } catch {
          refused++;
        }
      };
      await Promise.all(Array.from({ length: n }, () => one(MAX_HELLO_FRAME)));
      await Promise.all(Array.from({ length: n }, () => one(1024 * 1024)));
      return { mode, connections: 2 * n, refused };
    }
    case 'halfafter': {
      const s = await open();
      s.pause();
      hello(s);
      s.write(Buffer.concat([header(MAX_FRAME), Buffer.alloc(MAX_FRAME / 2, 0xa5)]));
      return { mode };
    }
    case 'connects': {
      const results = await Promise.allSettled(Array.from({ length: n }, () => open()));
      const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason?.code ?? String((r as PromiseRejectedResult).reason));
      return { mode, connects: n, refused: refused.length, errors: [...new Set(refused)] };
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

/** With FLOOD_WAIT=1 the flood starts on a line on stdin (after the start-up, which costs CPU). */
async function go(): Promise<void> {
  if (process.env.FLOOD_WAIT !== '1') return;
  process.stdout.write(JSON.stringify({ loaded: true }) + '\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
}

go().then(main).then(
  (r) => {
    process.stdout.write(JSON.stringify({ ready: true, ...r, open: keep.filter((s) => !s.destroyed).length }) + '\n');
    setInterval(() => undefined, 1 << 30); // hold the connections until killed
  },
  (e: Error) => {
    process.stdout.write(JSON.stringify({ ready: false, error: e.message }) + '\n');
    process.exit(1);
  },
);
