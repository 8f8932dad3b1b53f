// The access log's records (one JSON object per line, or one msgpack object each): a header
// that describes the machine, one `access` per access of a guest, one `event` per MUX event,
// and an `end` with the counts. Shipped as a JSON Schema: access-log.schema.json.

/** Version of the record format; readers refuse a newer one. */
export const LOG_VERSION = 1;

/** Data moved by a string access or a DMA: its length and CRC-32, and in full when a replay needs it. */
export interface DataDigest {
  len: number;
  /** CRC-32 (zlib) as 8 hex digits. */
  crc: string;
  /** The bytes (string writes, DMA reads of guest memory, IDENTIFY data reads). Base64 in JSON. */
  bytes?: Uint8Array;
}

export interface LogDevice {
  id: string;
  kind: string;
  /** The machine whose register map names its registers (null: none). */
  machine: string | null;
  regions: { name: string; space: 'pio' | 'mmio'; start: number; end: number }[];
  irq?: number;
  /** describe().properties as name -> value (an ATA disk's `sectors`, `model`, ...). */
  properties: Record<string, unknown>;
}

export interface HeaderRecord {
  type: 'header';
  version: number;
  tool: string;
  /** Wall-clock start (ISO 8601); every `t` counts ns from then, on a monotonic clock. */
  started: string;
  devices: LogDevice[];
  guests: { name: string; windows: Record<string, { startLba: number; sectors: number }> }[];
}

/** A register value: a number, or "0x..." for a 64-bit value past 2^53. */
export type LogValue = number | string;

export interface AccessRecord {
  type: 'access';
  /** Arrival, ns since the log started. */
  t: number;
  guest: string;
  /** Device id; `pci` for configuration space (0xCF8/0xCFC, pcicfg); null when unmapped. */
  device: string | null;
  space: 'pio' | 'mmio' | 'config';
  addr: number;
  /** Register name from the machine's register map (Linux's name when the map gives one). */
  reg: string | null;
  dir: 'r' | 'w';
  size: number;
  count: number;
  /** Written value (single writes). */
  value?: LogValue;
  /** Written data (string writes). */
  data?: DataDigest;
  /** Value read (single reads). */
  answer?: LogValue;
  /** Data read (string reads). */
  answerData?: DataDigest;
  /** Set when the access was refused (denied, faulted, unmapped device failure). */
  error?: string;
  /** Chart state before and after, and the owner, when a MUX ran it. */
  before?: string;
  after?: string;
  owner?: string;
  /** How long it waited for the device (ns), and arrival to answer (ns). */
  stallNs: number;
  ns: number;
}

export interface EventRecord {
  type: 'event';
  t: number;
  device: string;
  /** switch, release, reset, fault, replay, irq, dma, denied, policy-error, dma-refused, unsafe-switch, replay-failed */
  kind: string;
  guest?: string;
  /** The MUX chart's state (a DMA event: as last seen; absent without a MUX). */
  state?: string;
  safe?: boolean;
  detail?: string;
  ns?: number;
  level?: boolean;
  dma?: { dir: 'read' | 'write'; addr: number } & DataDigest;
}

export interface EndRecord {
  type: 'end';
  t: number;
  accesses: number;
  events: number;
  /** Times the writer fell behind its bound and blocked the supervisor until the disk caught up. */
  blocked: number;
}

export type LogRecord = HeaderRecord | AccessRecord | EventRecord | EndRecord;
