// The supervisor's side of the shared-memory access slot (PROTOCOL.md "Access slot",
// native/trap/slot.c): a peer that offers `slot` in its hello posts each access in a
// small sealed memfd instead of an `acc` frame. The supervisor polls the slots of all
// its peers for a short window after each access it served, so back-to-back accesses
// cost no system call; then it marks each slot `asleep` and returns to the event loop,
// and the peer's next access rings the doorbell (a `ring` frame) first.
//
// Node cannot mmap a peer's memfd, ask a socket for its peer or wake a futex:
// native/shm/build/muxvisor_shm.node does. Without the addon the capability is simply not
// offered back and the socket path is used.

import { createRequire } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Access, type Reply, SPACES } from '../access.ts';
import { accToAccess, type AccMsg, validatePeerMessage } from './messages.ts';

export const SHM_ADDON = resolve(dirname(fileURLToPath(import.meta.url)), '../../native/shm/build/muxvisor_shm.node');

/** Layout of native/trap/slot.h: 32-bit words first, then the request and reply. */
export const SLOT_SIZE = 8192;
export const SLOT_MAGIC = 0x314c534d;
const W_MAGIC = 0, W_REQ = 1, W_REP = 2, W_ASLEEP = 3, W_WAITING = 4, W_BELL = 5, W_SENT = 6, W_SPIN = 7;
const B_SPACE = 32, B_SIZE = 33, B_WRITE = 34, B_COUNT = 36, B_ADDR = 40, B_VALUE = 48, B_RESULT = 56, B_REFUSED = 64, B_CALM = 68, B_DATA = 4096;
const DATA_MAX = 4096;
/** A peer is active when it posted a request this recently (ms); the spin hint is redone this often. */
const ACTIVE_MS = 20;
const HINT_MS = 1;
/** An idle look at the slots taking this long (ms) means the poller lost its core: it stays calm a while (ms). */
const GAP_MS = 1;
/** How often the poller counts the runnable tasks of the machine (ms). */
const LOAD_MS = 1;
/** Samples in a row (LOAD_MS apart) that must see the machine crowded before the poller backs off. */
const LOAD_SAMPLES = 2;
const CALM_MIN_MS = 5;
const CALM_MAX_MS = 100;

interface ShmAddon {
  /** The peer's sealed memfd, /proc/PID/fd/FD; throws (with the reason) when it is not one. */
  mapFd(pid: number, fd: number, size: number): ArrayBuffer;
  /** Detaches and unmaps a buffer of mapFd now; false when it was not (or no longer) mapped. */
  unmap(buf: ArrayBuffer): boolean;
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  wake(buf: ArrayBuffer, byteOffset: number): number;
}

let addon: ShmAddon | null | undefined;

/** The addon, or null when it is not built (the fast path is then not offered). */
export function shmAddon(): ShmAddon | null {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)(SHM_ADDON) as ShmAddon;
    } catch {
      addon = null;
    }
  }
  return addon;
}

/** Runnable tasks right now (the 4th field of /proc/loadavg: "running/total"); 0 when unknown. */
function runnableTasks(): number {
  try {
    return Number(/ (\d+)\//.exec(readFileSync('/proc/loadavg', 'latin1'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** A u64 of the slot: a number, or a bigint above 2^53 (as msgpack decodes a uint64). */
function u64At(v: DataView, off: number): number | bigint {
  const lo = v.getUint32(off, true), hi = v.getUint32(off + 4, true);
  if (hi < 0x20_0000) return hi * 2 ** 32 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** Threads of this process other than the main one that are running right now (state R). */
function ownRunningHelpers(): number {
  let n = 0;
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      if (tid === String(process.pid)) continue;
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
      if (stat[stat.lastIndexOf(')') + 2] === 'R') n++; // the state follows "(comm) "
    }
  } catch {
    // a thread ended meanwhile, or no /proc: count what was seen
  }
  return n;
}

/** A broken slot (bad magic, size or request): the connection ends with a protocol error. */
export class SlotError extends Error {}

/** The fd of a connected Unix-domain net.Socket (Node keeps it in `_handle.fd`), or null. */
export function socketFd(socket: Socket): number | null {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : null;
}

/**
 * One peer's slot. `serve` answers an access now or later; the answer is written into
 * the slot and the peer woken if it sleeps. Frames sent on the peer's socket are counted
 * into `sent`, so the peer reads them before it takes an answer given after them.
 */
export class AccessSlot {
  private readonly words: Int32Array;
  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  private served: number;
  /** An answer is outstanding (the MUX stalls the guest): nothing to poll meanwhile. */
  pending = false;
  closed = false;
  /**
   * The connection does not read its peer now (flow.ts: its unread frames or accesses in
   * flight are at their bound): its requests wait, like frames in its socket.
   */
  held = false;
  /** performance.now() of the last request taken. */
  lastRequest = -Infinity;
  private spin = -1;

  constructor(
    private readonly buf: ArrayBuffer,
    private readonly shm: ShmAddon,
    private readonly serve: (acc: Access, answer: (r: Reply) => void) => void,
  ) {
    this.words = new Int32Array(buf, 0, 8);
    this.view = new DataView(buf);
    this.bytes = new Uint8Array(buf);
    if (buf.byteLength < SLOT_SIZE || Atomics.load(this.words, W_MAGIC) >>> 0 !== SLOT_MAGIC) throw new SlotError('access slot has a bad size or magic');
    this.served = Atomics.load(this.words, W_REQ);
  }

  /**
   * Maps the memfd `fd` of the process at the other end of `socket` (a Unix socket: the
   * kernel names the process, so a peer can offer only a memfd of its own). Throws
   * SlotError with the reason when the slot cannot be used.
   */
  static open(socket: Socket, fd: number, size: number): { buf: ArrayBuffer; shm: ShmAddon; pid: number } {
    const shm = shmAddon();
    if (!shm) throw new SlotError(`addon ${SHM_ADDON} not built`);
    if (size !== SLOT_SIZE) throw new SlotError(`access slot size ${size}, expected ${SLOT_SIZE}`);
    if (fd < 0) throw new SlotError('hello.slot has no fd (a uint)');
    const sfd = socketFd(socket);
    if (sfd === null) throw new SlotError('the socket has no file descriptor to ask for its peer');
    try {
      const { pid } = shm.peerCred(sfd);
      if (!(pid > 0)) throw new Error(`the socket's peer has no pid (${pid})`);
      return { buf: shm.mapFd(pid, fd, size), shm, pid };
    } catch (e) {
      throw new SlotError((e as Error).message);
    }
  }

  /** Takes a new request if there is one; true when it did. */
  poll(): boolean {
    if (this.pending || this.closed || this.held) return false;
    const req = Atomics.load(this.words, W_REQ);
    if (req === this.served) return false;
    this.served = req;
    this.lastRequest = performance.now();
    const acc = this.request();
    this.pending = true;
    this.serve(acc, (r) => this.answer(req, acc, r));
    return true;
  }

  /** Frames sent on the socket so far (stored before the frame is written). */
  noteSent(n: number): void {
    if (this.closed) return;
    Atomics.store(this.words, W_SENT, n | 0);
    this.bell();
  }

  /** Polling stops: the peer must ring. False when a request slipped in meanwhile. */
  sleep(): boolean {
    if (this.closed) return true;
    Atomics.store(this.words, W_ASLEEP, 1);
    if (!this.pending && !this.held && Atomics.load(this.words, W_REQ) !== this.served) {
      Atomics.store(this.words, W_ASLEEP, 0);
      return false;
    }
    return true;
  }

  /** The peer sent an `acc` frame: it is active all the same. */
  touch(): void {
    this.lastRequest = performance.now();
  }

  /** Whether the peer may busy-wait for answers (a hint; it sleeps on the bell otherwise). */
  allowSpin(on: boolean): void {
    if (this.closed || this.spin === +on) return;
    this.spin = +on;
    Atomics.store(this.words, W_SPIN, this.spin);
  }

  /** The peer is being preempted and sends `acc` frames for a while: polling for it is wasted. */
  get peerCalm(): boolean {
    return !this.closed && this.view.getUint32(B_CALM, true) !== 0;
  }

  /** A request is posted that nobody has taken yet (a doorbell that is not a stray). */
  get hasRequest(): boolean {
    return !this.closed && !this.pending && !this.held && Atomics.load(this.words, W_REQ) !== this.served;
  }

  awake(): void {
    if (!this.closed) Atomics.store(this.words, W_ASLEEP, 0);
  }

  /** Unmaps the slot now (its views are detached: every use checks `closed` first). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.shm.unmap(this.buf);
  }

  /**
   * The posted request, held to the rules of an `acc` frame (messages.ts validateAcc,
   * the same messages): an address or value that does not fit is a `malformed` error.
   */
  private request(): Access {
    const v = this.view;
    const sp = this.bytes[B_SPACE]!, size = this.bytes[B_SIZE]!;
    const count = v.getUint32(B_COUNT, true);
    if (count * size > DATA_MAX) throw new SlotError(`malformed slot request: ${count}x${size} bytes exceed the slot's ${DATA_MAX}`);
    const write = this.bytes[B_WRITE] !== 0;
    const o: Record<string, unknown> = { t: 'acc', id: 0, sp: SPACES[sp] ?? sp, a: u64At(v, B_ADDR), s: size, d: write ? 'w' : 'r' };
    if (count !== 1) o.n = count;
    if (write) {
      if (count > 1) o.b = this.bytes.slice(B_DATA, B_DATA + count * size);
      else o.v = u64At(v, B_VALUE);
    }
    return accToAccess(validatePeerMessage(o) as AccMsg);
  }

  private answer(id: number, acc: Access, r: Reply): void {
    this.pending = false;
    if (this.closed) return;
    const v = this.view;
    if (typeof r.value === 'bigint') v.setBigUint64(B_RESULT, BigInt.asUintN(64, r.value), true);
    else {
      v.setUint32(B_RESULT, r.value >>> 0, true);
      v.setUint32(B_RESULT + 4, Math.floor(r.value / 2 ** 32) >>> 0, true);
    }
    v.setUint32(B_REFUSED, r.error !== undefined ? 1 : 0, true);
    const want = (acc.count ?? 1) * acc.size;
    if (acc.dir === 'read' && (acc.count ?? 1) > 1) {
      const d = r.data ?? new Uint8Array(0);
      this.bytes.set(d.subarray(0, want), B_DATA);
      if (d.length < want) this.bytes.fill(0xff, B_DATA + d.length, B_DATA + want); // a short answer reads all-ones
    }
    Atomics.store(this.words, W_REP, id);
    this.bell();
  }

  /** Wakes the peer if it sleeps on the bell (it sets `waiting` before its last look). */
  private bell(): void {
    if (Atomics.load(this.words, W_WAITING) === 0) return;
    Atomics.add(this.words, W_BELL, 1);
    this.shm.wake(this.buf, W_BELL * 4);
  }
}

/**
 * Polls every slot of a server. After an access it keeps polling for `windowUs` without
 * news, so a driver's next access is taken without a wake-up; it yields to the event loop
 * every `sliceUs` even while busy, so socket peers, timers and devices still run.
 *
 * Polling pays only while the poller and the peers it waits for each have a core. When
 * the poller finds it lost its core for a while (a gap between two idle looks), the cores
 * are contended: it stops polling for a while, the slots say `asleep`, and peers send
 * their accesses as `acc` frames, which costs no more than before the slot existed.
 */
export class SlotPoller {
  private readonly slots = new Set<AccessSlot>();
  private running = false;
  private resumeQueued = false;
  /** Until then (performance.now() ms) the cores are contended: serve, but do not poll on. */
  private calmUntil = 0;
  private calmMs = CALM_MIN_MS;
  /** More peers active than `spinners` (see hint()). */
  private crowded = false;
  private sampled = -Infinity;
  /** Load samples in a row that saw more runnable tasks than cores + 1. */
  private overSamples = 0;
  private readonly cores = availableParallelism();

  /**
   * More runnable tasks than cores, and one more (we and a spinning peer are two of them):
   * someone waits for a core, and our polling would be what it waits behind. A CPU hog
   * alone is caught by the lost-core gap instead.
   */
  private overloaded(now: number): boolean {
    if (now - this.sampled < LOAD_MS) return false;
    this.sampled = now;
    const limit = this.cores + 1; // one more: a kernel worker or a passing process
    const runnable = runnableTasks();
    // This process's own helper threads (V8's GC and compiler, libuv's pool, tsx's loader)
    // come and go in bursts: they are not someone our polling keeps off a core (counted
    // only when needed). And a moment's crowd is no contention: LOAD_SAMPLES in a row are.
    const over = runnable > limit && runnable - ownRunningHelpers() > limit;
    this.overSamples = over ? this.overSamples + 1 : 0;
    return this.overSamples >= LOAD_SAMPLES;
  }

  /** Lost the core while polling: calm for a while, twice as long if it comes back soon after. */
  private calm(now: number): void {
    this.calmMs = now - this.calmUntil < 4 * this.calmMs ? Math.min(this.calmMs * 2, CALM_MAX_MS) : CALM_MIN_MS;
    this.calmUntil = now + this.calmMs;
  }

  /**
   * `spinners`: how many active peers the fast path serves (cores - 1). With more runnable
   * spinners than cores, a spinner keeps the one it waits for off the CPU for a
   * scheduler slice.
   */
  constructor(
    private readonly windowUs = 100,
    private readonly sliceUs = 1000,
    private readonly spinners = Math.max(0, availableParallelism() - 1),
  ) {}

  add(s: AccessSlot): void {
    this.slots.add(s);
  }

  remove(s: AccessSlot): void {
    this.slots.delete(s);
  }

  /**
   * More peers active (an access within ACTIVE_MS) than `spinners`: then polling would
   * keep a core busy while the peers queue for the other, so nobody polls or spins and
   * the peers send `acc` frames; the fast path is for the few.
   */
  private hint(now: number): void {
    let active = 0;
    for (const s of this.slots) if (now - s.lastRequest < ACTIVE_MS) active++;
    this.crowded = active > this.spinners;
    for (const s of this.slots) s.allowSpin(!this.crowded);
  }

  /** Every slot says a poll is coming (one must follow: kick). */
  awake(): void {
    for (const s of this.slots) s.awake();
  }

  /** A request may be waiting (doorbell, an answer given, an `acc` served): poll. */
  kick(onError: (s: AccessSlot, e: unknown) => void): void {
    if (this.running) return; // called from inside a poll: the running loop sees it
    this.running = true;
    try {
      for (const s of this.slots) s.awake();
      const start = performance.now();
      let last = start, prev = start, hinted = start;
      this.hint(start);
      for (;;) {
        let busy = false, live = false;
        for (const s of this.slots) {
          try {
            if (s.poll()) busy = true;
          } catch (e) {
            onError(s, e);
          }
          if (!s.pending && !s.closed) live = true;
        }
        const now = performance.now();
        if ((!busy && now - prev > GAP_MS) || (now >= this.calmUntil && this.overloaded(now))) this.calm(now); // we lost the core, or would take it from someone
        prev = now;
        if (now - hinted > HINT_MS) this.hint((hinted = now));
        if (busy) last = now;
        else if (!live || this.crowded || now < this.calmUntil || now - last >= this.windowUs / 1000) {
          let again = false;
          for (const s of this.slots) if (!s.sleep()) again = true;
          if (!again) return;
          last = now;
        }
        if (now - start >= this.sliceUs / 1000) {
          // Still busy: let the event loop run, then go on polling (slots stay awake).
          if (!this.resumeQueued) {
            this.resumeQueued = true;
            setImmediate(() => {
              this.resumeQueued = false;
              this.kick(onError);
            });
          }
          return;
        }
      }
    } finally {
      this.running = false;
    }
  }
}
