// Message types of the channel protocol (PROTOCOL.md, version 1) and their validation.
// Validation is hand-written: `acc` and `rep` are the hot path (one per trapped access).

import type { Access, Reply, Size, Space } from '../access.ts';

export const PROTOCOL_VERSION = 1;
/**
 * Largest data of one string access (n*s), read or written: 64 KiB, more than a register
 * delivers at once (an ATA DRQ block is 512 bytes x the multiple count, at most 256 x 512;
 * the trap shim sends at most 4 KiB per access, a KVM exit a page). It bounds what one
 * access may make the supervisor allocate; a larger access is a protocol error.
 */
export const MAX_STRING_BYTES = 64 * 1024;
/**
 * Largest payload of one frame (PROTOCOL.md "Framing"): the biggest legal message, a
 * string write of MAX_STRING_BYTES (or a dmad/dmaw of as many bytes), plus its fields.
 */
export const MAX_FRAME = MAX_STRING_BYTES + 1024;
/** Largest first frame of a connection (the hello: a guest name, caps, a DMA path). */
export const MAX_HELLO_FRAME = 8 * 1024;

export type ErrorCode =
  | 'malformed'
  | 'oversized'
  | 'unknown-type'
  | 'version'
  | 'no-hello'
  | 'unknown-guest'
  | 'duplicate-guest'
  | 'refused'
  | 'timeout';

/** A peer (or supervisor) broke the protocol. The only error the decoder throws. */
export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    /** The problem without the code: what goes into an `err` message's `msg`. */
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
    this.name = 'ProtocolError';
  }
}

export type Cap = 'pio' | 'mmio' | 'irq' | 'dma' | 'string' | 'slot';
export type U64 = number | bigint;

/**
 * `dma.fd`: the peer's descriptor number of its DMA memfd (-1: the field was not a uint; the
 * offer is refused). `dma.path` is no longer accepted (PROTOCOL.md "DMA memory"): it is kept
 * only to be refused with that reason. `token`: a credential (peer-auth.ts), never logged.
 */
export interface HelloMsg { t: 'hello'; v: number; guest: string; caps: string[]; dma?: { fd?: number; path?: string; base: number; size: number }; slot?: { fd: number; size: number }; token?: string }
/** `slot: 1`: the supervisor mapped the hello's access slot; accesses go through it. */
export interface WelcomeMsg { t: 'welcome'; v: number; guest: string; irqs: number[]; slot?: 1 }
/** The doorbell of the access slot: a request is posted while the supervisor is not polling. */
export interface RingMsg { t: 'ring' }
export interface AccMsg { t: 'acc'; id: U64; sp: Space; a: number; s: Size; d: 'r' | 'w'; v?: U64; n?: number; b?: Uint8Array }
export interface RepMsg { t: 'rep'; id: U64; v: U64; b?: Uint8Array; e?: string }
export interface IrqMsg { t: 'irq'; line: number; level: 0 | 1 }
export interface DmarMsg { t: 'dmar'; id: U64; a: number; n: number }
export interface DmadMsg { t: 'dmad'; id: U64; b?: Uint8Array; e?: string }
export interface DmawMsg { t: 'dmaw'; id: U64; a: number; b: Uint8Array }
export interface DmakMsg { t: 'dmak'; id: U64; e?: string }
export interface ResetMsg { t: 'reset'; dev: string; reason: string }
export interface ErrMsg { t: 'err'; code: string; msg: string }
export interface ByeMsg { t: 'bye'; reason?: string }

/** Messages a peer sends to the supervisor. */
export type PeerMessage = HelloMsg | AccMsg | DmadMsg | DmakMsg | RingMsg | ErrMsg | ByeMsg;
/** Messages the supervisor sends to a peer. */
export type SupervisorMessage = WelcomeMsg | RepMsg | IrqMsg | DmarMsg | DmawMsg | ResetMsg | ErrMsg | ByeMsg;
export type Message = PeerMessage | SupervisorMessage;

const PEER_TYPES = new Set(['hello', 'acc', 'dmad', 'dmak', 'ring', 'err', 'bye']);
const SUPERVISOR_TYPES = new Set(['welcome', 'rep', 'irq', 'dmar', 'dmaw', 'reset', 'err', 'bye']);
const SPACE_SET = new Set<unknown>(['pio', 'mmio', 'pcicfg']);

type Obj = Record<string, unknown>;

function bad(t: string, msg: string): never {
  throw new ProtocolError('malformed', `${t}: ${msg}`);
}

/** A uint (msgpack may hand a uint64 as bigint); numbers above 2^53 stay bigint. */
function u64(o: Obj, key: string, t: string): U64 {
  const v = o[key];
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && v >= 0) return v;
  } else if (typeof v === 'bigint') {
    if (v >= 0n && v <= 0xffff_ffff_ffff_ffffn) return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  return bad(t, `field ${key} must be an unsigned integer, got ${describe(v)}`);
}

/** A uint that fits a JS number exactly (addresses, lengths, lines). */
function uint(o: Obj, key: string, t: string): number {
  const v = u64(o, key, t);
  if (typeof v === 'bigint') bad(t, `field ${key} is too large: ${v}`);
  return v as number;
}

function str(o: Obj, key: string, t: string): string {
  const v = o[key];
  if (typeof v !== 'string') bad(t, `field ${key} must be a string, got ${describe(v)}`);
  return v as string;
}

function optStr(o: Obj, key: string, t: string): string | undefined {
  return o[key] === undefined || o[key] === null ? undefined : str(o, key, t);
}

function bin(o: Obj, key: string, t: string): Uint8Array {
  const v = o[key];
  if (!(v instanceof Uint8Array)) bad(t, `field ${key} must be bin, got ${describe(v)}`);
  return v as Uint8Array;
}

function optBin(o: Obj, key: string, t: string): Uint8Array | undefined {
  return o[key] === undefined || o[key] === null ? undefined : bin(o, key, t);
}

function describe(v: unknown): string {
  if (v === null) return 'nil';
  if (v instanceof Uint8Array) return 'bin';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? 'map' : `${typeof v} ${String(v).slice(0, 40)}`;
}

const SIZE_MAX: Record<number, bigint> = { 1: 0xffn, 2: 0xffffn, 4: 0xffff_ffffn, 8: 0xffff_ffff_ffff_ffffn };

function validateAcc(o: Obj): AccMsg {
  const id = u64(o, 'id', 'acc');
  const sp = o.sp;
  if (!SPACE_SET.has(sp)) bad('acc', `field sp must be pio, mmio or pcicfg, got ${describe(sp)}`);
  const a = uint(o, 'a', 'acc');
  const s = o.s;
  if (s !== 1 && s !== 2 && s !== 4 && s !== 8) bad('acc', `field s must be 1, 2, 4 or 8, got ${describe(s)}`);
  const d = o.d;
  if (d !== 'r' && d !== 'w') bad('acc', `field d must be "r" or "w", got ${describe(d)}`);
  const n = o.n === undefined || o.n === null ? 1 : uint(o, 'n', 'acc');
  if (n < 1) bad('acc', 'field n must be at least 1');
  // Checked before anything is allocated for the access (a read's reply, a refusal's all-ones).
  if (n * s > MAX_STRING_BYTES) bad('acc', `string access of ${n}x${s} bytes exceeds the limit of ${MAX_STRING_BYTES} bytes per access`);
  const msg: AccMsg = { t: 'acc', id, sp: sp as Space, a, s, d };
  if (n > 1) msg.n = n;
  if (d === 'w' && n > 1) {
    const b = bin(o, 'b', 'acc');
    if (b.length !== n * s) bad('acc', `field b has ${b.length} bytes, expected n*s = ${n * s}`);
    msg.b = b;
  } else if (o.v !== undefined && o.v !== null) {
    const v = u64(o, 'v', 'acc');
    if (BigInt(v) > SIZE_MAX[s]) bad('acc', `value ${v} does not fit ${s} bytes`);
    msg.v = s === 8 ? BigInt(v) : Number(v);
  } else if (d === 'w') {
    bad('acc', 'a write needs field v');
  }
  return msg;
}

function validateRep(o: Obj): RepMsg {
  const msg: RepMsg = { t: 'rep', id: u64(o, 'id', 'rep'), v: u64(o, 'v', 'rep') };
  const b = optBin(o, 'b', 'rep');
  if (b) msg.b = b;
  const e = optStr(o, 'e', 'rep');
  if (e !== undefined) msg.e = e;
  return msg;
}

function uintArray(o: Obj, key: string, t: string): number[] {
  const v = o[key];
  if (!Array.isArray(v)) bad(t, `field ${key} must be an array, got ${describe(v)}`);
  return (v as unknown[]).map((x, i) => uint({ [`${key}[${i}]`]: x }, `${key}[${i}]`, t));
}

function validateHello(o: Obj): HelloMsg {
  const v = uint(o, 'v', 'hello');
  const guest = str(o, 'guest', 'hello');
  const caps = o.caps;
  if (!Array.isArray(caps) || !caps.every((c) => typeof c === 'string')) bad('hello', 'field caps must be an array of strings');
  const msg: HelloMsg = { t: 'hello', v, guest, caps: caps as string[] };
  if (o.dma !== undefined && o.dma !== null) {
    const dma = o.dma;
    if (typeof dma !== 'object' || Array.isArray(dma) || dma instanceof Uint8Array) bad('hello', 'field dma must be a map');
    const d = dma as Obj;
    // Without an fd the window's bytes travel in dmar/dmaw messages.
    msg.dma = { base: uint(d, 'base', 'hello.dma'), size: uint(d, 'size', 'hello.dma') };
    // An fd the supervisor cannot use is refused with the reason, not a protocol error: -1.
    if (d.fd !== undefined && d.fd !== null) msg.dma.fd = typeof d.fd === 'number' && Number.isSafeInteger(d.fd) && d.fd >= 0 ? d.fd : -1;
    const path = optStr(d, 'path', 'hello.dma');
    if (path !== undefined) msg.dma.path = path;
  }
  const token = optStr(o, 'token', 'hello');
  if (token !== undefined) msg.token = token;
  if (o.slot !== undefined && o.slot !== null) {
    const slot = o.slot;
    if (typeof slot !== 'object' || Array.isArray(slot) || slot instanceof Uint8Array) bad('hello', 'field slot must be a map');
    // An offer the supervisor cannot use is refused (the socket carries the accesses), not
    // a protocol error: -1 for a field that is not a small uint.
    const n = (k: string): number => {
      const x = (slot as Obj)[k];
      return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : -1;
    };
    msg.slot = { fd: n('fd'), size: n('size') };
  }
  return msg;
}

function validateCommon(t: string, o: Obj): Message | undefined {
  switch (t) {
    case 'err':
      return { t, code: str(o, 'code', t), msg: str(o, 'msg', t) };
    case 'bye': {
      const reason = optStr(o, 'reason', t);
      return reason === undefined ? { t } : { t, reason };
    }
    default:
      return undefined;
  }
}

function header(raw: unknown): { t: string; o: Obj } {
  // Only plain maps: msgpackr may build other things (records, extensions, arrays).
  if (typeof raw !== 'object' || raw === null || Object.getPrototypeOf(raw) !== Object.prototype) {
    throw new ProtocolError('malformed', `a frame must hold a map, got ${describe(raw)}`);
  }
  const o = raw as Obj;
  if (typeof o.t !== 'string') throw new ProtocolError('malformed', `field t must be a string, got ${describe(o.t)}`);
  return { t: o.t, o };
}

/** Validate a decoded value sent by a peer. Throws ProtocolError. */
export function validatePeerMessage(raw: unknown): PeerMessage {
  const { t, o } = header(raw);
  if (t === 'acc') return validateAcc(o);
  if (!PEER_TYPES.has(t)) {
    throw new ProtocolError('unknown-type', SUPERVISOR_TYPES.has(t) ? `${t} is sent by the supervisor, not by a peer` : `unknown message type ${JSON.stringify(t.slice(0, 40))}`);
  }
  switch (t) {
    case 'hello':
      return validateHello(o);
    case 'dmad': {
      const msg: DmadMsg = { t, id: u64(o, 'id', t) };
      const b = optBin(o, 'b', t);
      const e = optStr(o, 'e', t);
      if (b) msg.b = b;
      if (e !== undefined) msg.e = e;
      if (!b && e === undefined) bad(t, 'needs field b or e');
      return msg;
    }
    case 'dmak': {
      const msg: DmakMsg = { t, id: u64(o, 'id', t) };
      const e = optStr(o, 'e', t);
      if (e !== undefined) msg.e = e;
      return msg;
    }
    case 'ring':
      return { t };
    default:
      return validateCommon(t, o) as PeerMessage;
  }
}

/** Validate a decoded value sent by the supervisor (used by peers). Throws ProtocolError. */
export function validateSupervisorMessage(raw: unknown): SupervisorMessage {
  const { t, o } = header(raw);
  if (t === 'rep') return validateRep(o);
  if (!SUPERVISOR_TYPES.has(t)) {
    throw new ProtocolError('unknown-type', PEER_TYPES.has(t) ? `${t} is sent by a peer, not by the supervisor` : `unknown message type ${JSON.stringify(t.slice(0, 40))}`);
  }
  switch (t) {
    case 'welcome':
      return { t, v: uint(o, 'v', t), guest: str(o, 'guest', t), irqs: uintArray(o, 'irqs', t) };
    case 'irq': {
      const level = uint(o, 'level', t);
      if (level > 1) bad(t, 'field level must be 0 or 1');
      return { t, line: uint(o, 'line', t), level: level as 0 | 1 };
    }
    case 'dmar':
      return { t, id: u64(o, 'id', t), a: uint(o, 'a', t), n: uint(o, 'n', t) };
    case 'dmaw':
      return { t, id: u64(o, 'id', t), a: uint(o, 'a', t), b: bin(o, 'b', t) };
    case 'reset':
      return { t, dev: str(o, 'dev', t), reason: str(o, 'reason', t) };
    default:
      return validateCommon(t, o) as SupervisorMessage;
  }
}

/** The Access of an `acc` message. */
export function accToAccess(m: AccMsg): Access {
  const acc: Access = { space: m.sp, addr: m.a, size: m.s, dir: m.d === 'r' ? 'read' : 'write' };
  if (m.v !== undefined) acc.value = m.v;
  else if (acc.dir === 'write' && !m.b) acc.value = m.s === 8 ? 0n : 0;
  if (m.n !== undefined && m.n > 1) acc.count = m.n;
  if (m.b) acc.data = m.b;
  return acc;
}

/** The `acc` message of an Access. */
export function accessToAcc(id: U64, acc: Access): AccMsg {
  const m: AccMsg = { t: 'acc', id, sp: acc.space, a: acc.addr, s: acc.size, d: acc.dir === 'read' ? 'r' : 'w' };
  const n = acc.count ?? 1;
  if (n > 1) m.n = n;
  if (acc.dir === 'write') {
    if (n > 1) m.b = acc.data ?? new Uint8Array(0);
    else m.v = acc.value ?? 0;
  }
  return m;
}

/** The `rep` message of a Reply. */
export function replyToRep(id: U64, reply: Reply): RepMsg {
  const m: RepMsg = { t: 'rep', id, v: reply.value };
  if (reply.data) m.b = reply.data;
  if (reply.error !== undefined) m.e = reply.error;
  return m;
}

/** The Reply of a `rep` message; `size` restores the bigint form of 8-byte values. */
export function repToReply(m: RepMsg, size?: Size): Reply {
  const r: Reply = { value: size === 8 ? BigInt(m.v) : typeof m.v === 'bigint' ? m.v : m.v };
  if (m.b) r.data = m.b;
  if (m.e !== undefined) r.error = m.e;
  return r;
}
