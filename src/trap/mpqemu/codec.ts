// QEMU's multi-process protocol (x-pci-proxy-dev <-> remote), as QEMU 7.2 speaks it
// (include/hw/remote/mpqemu-link.h, hw/remote/mpqemu-link.c): no version, no handshake.
// Each message is a 16-byte header (int32 cmd, 4 bytes padding, uint64 size: MPQemuMsg up
// to its data union, native x86-64 layout, little-endian) and `size` bytes of body;
// descriptors ride as SCM_RIGHTS on the header. Values that QEMU sends as 64 bits stay
// bigints here, so a message re-encodes to its exact bytes.

export const MPQEMU_HDR_SIZE = 16;
/** sizeof the data union: SyncSysmemMsg (3 x 8 x 8 bytes) is the largest member. */
export const MPQEMU_MAX_BODY = 192;
/** REMOTE_MAX_FDS; a valid message carries fewer (mpqemu_msg_valid refuses num_fds >= 8). */
export const MPQEMU_MAX_FDS = 8;

/** MPQemuCmd. */
export const MPQEMU_CMD_SYNC_SYSMEM = 0; // guest RAM sections, one fd each; no reply
export const MPQEMU_CMD_RET = 1; // the reply: u64 (or no body after DEVICE_RESET)
export const MPQEMU_CMD_PCI_CFGWRITE = 2; // PciConfDataMsg; reply RET
export const MPQEMU_CMD_PCI_CFGREAD = 3; // PciConfDataMsg; reply RET with the value
export const MPQEMU_CMD_BAR_WRITE = 4; // BarAccessMsg; reply RET
export const MPQEMU_CMD_BAR_READ = 5; // BarAccessMsg; reply RET with the value
export const MPQEMU_CMD_SET_IRQFD = 6; // no body, fds: interrupt eventfd, resample eventfd; no reply
export const MPQEMU_CMD_DEVICE_RESET = 7; // no body; reply RET
export const MPQEMU_CMD_MAX = 8;

const CMD_NAMES = ['SYNC_SYSMEM', 'RET', 'PCI_CFGWRITE', 'PCI_CFGREAD', 'BAR_WRITE', 'BAR_READ', 'SET_IRQFD', 'DEVICE_RESET'] as const;
export type MpqemuCmdName = (typeof CMD_NAMES)[number];

export function cmdName(cmd: number): string {
  return CMD_NAMES[cmd] ?? `unknown command ${cmd}`;
}

const SYNC_SYSMEM_SIZE = 192; // SyncSysmemMsg: hwaddr gpas[8], uint64_t sizes[8], off_t offsets[8]
const PCI_CONF_SIZE = 12; // PciConfDataMsg: uint32_t addr, uint32_t val, int len
const BAR_ACCESS_SIZE = 24; // BarAccessMsg: hwaddr addr, uint64_t val, unsigned size, bool memory, 3 padding
const RET_SIZE = 8; // uint64_t

export interface SyncSysmemMsg {
  cmd: typeof MPQEMU_CMD_SYNC_SYSMEM;
  /** All eight slots as sent; slot i < fds.length describes fds[i]. */
  gpas: bigint[];
  sizes: bigint[];
  /** off_t: signed. */
  offsets: bigint[];
  fds: number[];
}
export interface RetMsg {
  cmd: typeof MPQEMU_CMD_RET;
  /** null: a RET without body (QEMU's remote answers DEVICE_RESET so; the proxy reads 0). */
  value: bigint | null;
}
export interface PciConfMsg {
  cmd: typeof MPQEMU_CMD_PCI_CFGWRITE | typeof MPQEMU_CMD_PCI_CFGREAD;
  addr: number;
  val: number;
  len: 1 | 2 | 4;
}
export interface BarAccessMsg {
  cmd: typeof MPQEMU_CMD_BAR_WRITE | typeof MPQEMU_CMD_BAR_READ;
  /** Absolute guest address: the BAR's base as the guest programmed it, plus the offset. */
  addr: bigint;
  val: bigint;
  size: 1 | 2 | 4 | 8;
  /** true: memory space (MMIO); false: I/O ports. */
  memory: boolean;
}
export interface SetIrqfdMsg {
  cmd: typeof MPQEMU_CMD_SET_IRQFD;
  /** [interrupt eventfd, resample eventfd]. */
  fds: [number, number];
}
export interface DeviceResetMsg {
  cmd: typeof MPQEMU_CMD_DEVICE_RESET;
}
export type MpqemuMessage = SyncSysmemMsg | RetMsg | PciConfMsg | BarAccessMsg | SetIrqfdMsg | DeviceResetMsg;

/** What was wrong with a message; each is counted under its own name. */
export type MalformedKind =
  | 'bad-size' // body size not the command's (or larger than any message)
  | 'unknown-command'
  | 'bad-fds' // wrong number of descriptors for the command, too many, or sent with the body
  | 'bad-access-size' // BAR access size not 1/2/4/8, config length not 1/2/4
  | 'bad-field' // a field out of its range (config address past 0xff, memory flag not 0/1)
  | 'truncated' // the peer closed mid-message
  | 'unexpected-command' // a valid command the receiving side does not take (RET to a remote)
  | 'bad-address' // outside the BARs the guest programmed
  | 'bad-memory'; // guest RAM fds that cannot be mapped as announced

export class MpqemuMalformed extends Error {
  constructor(
    readonly kind: MalformedKind,
    message: string,
  ) {
    super(message);
    this.name = 'MpqemuMalformed';
  }
}

export interface DecodeInput {
  bytes: Buffer;
  fds: readonly number[];
  /** native.ts FLAG_CTRUNC | FLAG_FDS_IN_BODY. */
  ctrunc?: boolean;
  fdsInBody?: boolean;
}

function bad(kind: MalformedKind, message: string): never {
  throw new MpqemuMalformed(kind, message);
}

function expectFds(name: string, fds: readonly number[], min: number, max: number): void {
  if (fds.length < min || fds.length > max) bad('bad-fds', `${name} with ${fds.length} descriptor(s), expected ${min === max ? min : `${min}..${max}`}`);
}

function expectSize(name: string, size: number, a: number, b = a): void {
  if (size !== a && size !== b) bad('bad-size', `${name}: body of ${size} bytes, expected ${a === b ? a : `${a} or ${b}`}`);
}

/** The command and body size of a header (no validation). */
export function peekHeader(bytes: Buffer): { cmd: number; size: bigint } {
  return { cmd: bytes.readInt32LE(0), size: bytes.readBigUInt64LE(8) };
}

const B = MPQEMU_HDR_SIZE; // where the body starts

/**
 * Decodes and validates one message: header and body in `bytes`, the descriptors that came
 * with it in `fds`. Throws MpqemuMalformed; the caller owns (and closes) the fds either way.
 */
export function decodeMessage(input: DecodeInput): MpqemuMessage {
  const { bytes, fds } = input;
  if (bytes.length < MPQEMU_HDR_SIZE) bad('truncated', `message of ${bytes.length} bytes, shorter than the ${MPQEMU_HDR_SIZE}-byte header`);
  const cmd = bytes.readInt32LE(0);
  // The size as two halves: a number for every size a message can have, no bigint on the hot path.
  const sizeLo = bytes.readUInt32LE(8), sizeHi = bytes.readUInt32LE(12);
  if (sizeHi !== 0 || sizeLo > MPQEMU_MAX_BODY) bad('bad-size', `${cmdName(cmd)}: body of ${bytes.readBigUInt64LE(8)} bytes, more than the ${MPQEMU_MAX_BODY} any message has`);
  const size = sizeLo;
  if (bytes.length !== MPQEMU_HDR_SIZE + size) bad('truncated', `${cmdName(cmd)}: ${bytes.length - MPQEMU_HDR_SIZE} of ${size} body bytes`);
  if (cmd < 0 || cmd >= MPQEMU_CMD_MAX) bad('unknown-command', `unknown command ${cmd} (body ${size} bytes)`);
  const name = CMD_NAMES[cmd];
  if (input.ctrunc) bad('bad-fds', `${name} with more than ${MPQEMU_MAX_FDS} descriptors`);
  if (input.fdsInBody) bad('bad-fds', `${name}: descriptors sent with the body, not the header`);
  switch (cmd) {
    case MPQEMU_CMD_SYNC_SYSMEM: {
      expectSize(name, size, SYNC_SYSMEM_SIZE);
      expectFds(name, fds, 1, MPQEMU_MAX_FDS - 1);
      const gpas: bigint[] = [], sizes: bigint[] = [], offsets: bigint[] = [];
      for (let i = 0; i < MPQEMU_MAX_FDS; i++) {
        gpas.push(bytes.readBigUInt64LE(B + 8 * i));
        sizes.push(bytes.readBigUInt64LE(B + 64 + 8 * i));
        offsets.push(bytes.readBigInt64LE(B + 128 + 8 * i)); // off_t: signed
      }
      return { cmd, gpas, sizes, offsets, fds: [...fds] };
    }
    case MPQEMU_CMD_RET:
      expectSize(name, size, 0, RET_SIZE);
      expectFds(name, fds, 0, 0);
      return { cmd, value: size === 0 ? null : bytes.readBigUInt64LE(B) };
    case MPQEMU_CMD_PCI_CFGWRITE:
    case MPQEMU_CMD_PCI_CFGREAD: {
      expectSize(name, size, PCI_CONF_SIZE);
      expectFds(name, fds, 0, 0);
      const addr = bytes.readUInt32LE(B), val = bytes.readUInt32LE(B + 4), len = bytes.readInt32LE(B + 8);
      if (len !== 1 && len !== 2 && len !== 4) bad('bad-access-size', `${name} of ${len} bytes at 0x${addr.toString(16)}`);
      return { cmd, addr, val, len };
    }
    case MPQEMU_CMD_BAR_WRITE:
    case MPQEMU_CMD_BAR_READ: {
      expectSize(name, size, BAR_ACCESS_SIZE);
      expectFds(name, fds, 0, 0);
      const accessSize = bytes.readUInt32LE(B + 16), memory = bytes[B + 20];
      const addr = bytes.readBigUInt64LE(B), val = bytes.readBigUInt64LE(B + 8);
      if (accessSize !== 1 && accessSize !== 2 && accessSize !== 4 && accessSize !== 8) bad('bad-access-size', `${name} of ${accessSize} bytes at 0x${addr.toString(16)}`);
      if (memory > 1) bad('bad-field', `${name}: memory flag ${memory} (a C bool: 0 or 1)`);
      return { cmd, addr, val, size: accessSize, memory: memory === 1 };
    }
    case MPQEMU_CMD_SET_IRQFD:
      expectSize(name, size, 0);
      expectFds(name, fds, 2, 2);
      return { cmd, fds: [fds[0], fds[1]] };
    default: // MPQEMU_CMD_DEVICE_RESET
      expectSize(name, size, 0);
      expectFds(name, fds, 0, 0);
      return { cmd: MPQEMU_CMD_DEVICE_RESET };
  }
}

function bodySize(msg: MpqemuMessage): number {
  switch (msg.cmd) {
    case MPQEMU_CMD_SYNC_SYSMEM: return SYNC_SYSMEM_SIZE;
    case MPQEMU_CMD_RET: return msg.value === null ? 0 : RET_SIZE;
    case MPQEMU_CMD_PCI_CFGWRITE:
    case MPQEMU_CMD_PCI_CFGREAD: return PCI_CONF_SIZE;
    case MPQEMU_CMD_BAR_WRITE:
    case MPQEMU_CMD_BAR_READ: return BAR_ACCESS_SIZE;
    default: return 0; // SET_IRQFD, DEVICE_RESET
  }
}

/** The bytes of a message (padding zero, as QEMU sends it) and the descriptors to send with it. */
export function encodeMessage(msg: MpqemuMessage): { bytes: Buffer; fds: number[] } {
  const size = bodySize(msg);
  const bytes = Buffer.alloc(MPQEMU_HDR_SIZE + size);
  bytes.writeInt32LE(msg.cmd, 0);
  bytes.writeUInt32LE(size, 8); // the upper half of the u64 stays 0
  const b = B;
  switch (msg.cmd) {
    case MPQEMU_CMD_SYNC_SYSMEM:
      for (let i = 0; i < MPQEMU_MAX_FDS; i++) {
        bytes.writeBigUInt64LE(BigInt.asUintN(64, msg.gpas[i] ?? 0n), b + 8 * i);
        bytes.writeBigUInt64LE(BigInt.asUintN(64, msg.sizes[i] ?? 0n), b + 64 + 8 * i);
        bytes.writeBigInt64LE(BigInt.asIntN(64, msg.offsets[i] ?? 0n), b + 128 + 8 * i);
      }
      return { bytes, fds: msg.fds };
    case MPQEMU_CMD_RET:
      if (msg.value !== null) bytes.writeBigUInt64LE(BigInt.asUintN(64, msg.value), b);
      break;
    case MPQEMU_CMD_PCI_CFGWRITE:
    case MPQEMU_CMD_PCI_CFGREAD:
      bytes.writeUInt32LE(msg.addr >>> 0, b);
      bytes.writeUInt32LE(msg.val >>> 0, b + 4);
      bytes.writeInt32LE(msg.len, b + 8);
      break;
    case MPQEMU_CMD_BAR_WRITE:
    case MPQEMU_CMD_BAR_READ:
      bytes.writeBigUInt64LE(BigInt.asUintN(64, msg.addr), b);
      bytes.writeBigUInt64LE(BigInt.asUintN(64, msg.val), b + 8);
      bytes.writeUInt32LE(msg.size, b + 16);
      bytes.writeUInt8(msg.memory ? 1 : 0, b + 20);
      break;
    case MPQEMU_CMD_SET_IRQFD:
      return { bytes, fds: msg.fds };
    case MPQEMU_CMD_DEVICE_RESET:
      break;
  }
  return { bytes, fds: [] };
}

/** A RET with a u64 body: the answer to a config or BAR request. */
export function encodeRet(value: bigint | null): Buffer {
  return encodeMessage({ cmd: MPQEMU_CMD_RET, value }).bytes;
}

/** One line for logs. */
export function describeMessage(msg: MpqemuMessage): string {
  const hex = (v: number | bigint): string => `0x${v.toString(16)}`;
  switch (msg.cmd) {
    case MPQEMU_CMD_SYNC_SYSMEM:
      return `SYNC_SYSMEM ${msg.fds.map((_, i) => `${hex(msg.gpas[i])}+${hex(msg.sizes[i])}@${hex(msg.offsets[i])}`).join(' ')}`;
    case MPQEMU_CMD_RET:
      return `RET ${msg.value === null ? '(no body)' : hex(msg.value)}`;
    case MPQEMU_CMD_PCI_CFGWRITE:
      return `PCI_CFGWRITE ${hex(msg.addr)}/${msg.len} = ${hex(msg.val)}`;
    case MPQEMU_CMD_PCI_CFGREAD:
      return `PCI_CFGREAD ${hex(msg.addr)}/${msg.len}`;
    case MPQEMU_CMD_BAR_WRITE:
      return `BAR_WRITE ${msg.memory ? 'mmio' : 'pio'} ${hex(msg.addr)}/${msg.size} = ${hex(msg.val)}`;
    case MPQEMU_CMD_BAR_READ:
      return `BAR_READ ${msg.memory ? 'mmio' : 'pio'} ${hex(msg.addr)}/${msg.size}`;
    case MPQEMU_CMD_SET_IRQFD:
      return `SET_IRQFD irq fd ${msg.fds[0]}, resample fd ${msg.fds[1]}`;
    case MPQEMU_CMD_DEVICE_RESET:
      return 'DEVICE_RESET';
  }
}
