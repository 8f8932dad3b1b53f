// The access model (DESIGN.md "Words"): one trapped register access of a guest.

export type Space = 'pio' | 'mmio' | 'pcicfg';
export type Size = 1 | 2 | 4 | 8;
export type Dir = 'read' | 'write';

export const SPACES: readonly Space[] = ['pio', 'mmio', 'pcicfg'];
export const SIZES: readonly Size[] = [1, 2, 4, 8];

export interface Access {
  space: Space;
  /** Absolute address in its space (a port, a guest-physical MMIO address, or a pcicfg address). */
  addr: number;
  size: Size;
  dir: Dir;
  /** Value written (writes). Size 8 uses a bigint; smaller sizes a non-negative number. */
  value?: number | bigint;
  /** Repetitions for string I/O (`rep insw`/`rep outsw`); 1 when absent. */
  count?: number;
  /** String writes: count*size bytes, little-endian elements. */
  data?: Uint8Array;
}

export interface Reply {
  /** Value read (single reads); 0 for writes. Size 8 uses a bigint. */
  value: number | bigint;
  /** String reads: count*size bytes. */
  data?: Uint8Array;
  /** Set when the access was refused (denied, faulted guest); the value is then all-ones. */
  error?: string;
}

/** All-ones of a width: what an unmapped or denied read returns. */
export function allOnes(size: Size): number | bigint {
  return size === 8 ? 0xffff_ffff_ffff_ffffn : size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff;
}

/** The reply for an access that reaches nothing: all-ones for reads (and string reads), 0 for writes. */
export function deniedReply(acc: Access, error?: string): Reply {
  if (acc.dir === 'write') return error ? { value: 0, error } : { value: 0 };
  const count = acc.count ?? 1;
  const reply: Reply = { value: allOnes(acc.size) };
  if (count > 1) reply.data = new Uint8Array(count * acc.size).fill(0xff);
  if (error) reply.error = error;
  return reply;
}

export function hex(n: number | bigint): string {
  return '0x' + n.toString(16);
}

/** Human form of an access for logs and errors: `pio write 0x1f7/1 = 0xec`. */
export function describeAccess(acc: Access): string {
  const count = acc.count && acc.count > 1 ? ` x${acc.count}` : '';
  const val = acc.dir === 'write' && acc.value !== undefined ? ` = ${hex(acc.value)}` : '';
  return `${acc.space} ${acc.dir} ${hex(acc.addr)}/${acc.size}${count}${val}`;
}
