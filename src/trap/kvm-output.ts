// What a bare-metal guest prints on its debug port (native/guests/ata-driver.c): plain lines,
// `MARK <name>` timing marks and one final `RESULT ok ...` / `RESULT fail ...` line.
// Shared by the KVM runner (src/trap/kvm.ts) and the QEMU side of the comparison.

export interface GuestResult {
  ok: boolean;
  /** The text after `RESULT ok|fail`. */
  text: string;
  /** `key=value` fields of the result line (`sectors`, `mode`, `bytes`, `lba`, ...). */
  fields: Record<string, string>;
}

export interface GuestOutput {
  lines: string[];
  /** Time of each MARK line, in µs on the clock that stamped it. */
  marks: Record<string, number>;
  result: GuestResult | null;
}

export function newGuestOutput(): GuestOutput {
  return { lines: [], marks: {}, result: null };
}

/** Records one guest line seen at `atUs` (µs); returns the parsed result when it is the RESULT line. */
export function addGuestLine(out: GuestOutput, line: string, atUs: number): GuestResult | null {
  out.lines.push(line);
  const mark = /^MARK (\S+)/.exec(line);
  if (mark) out.marks[mark[1]] = atUs;
  const res = /^RESULT (ok|fail)\b ?(.*)$/.exec(line);
  if (!res) return null;
  const fields: Record<string, string> = {};
  for (const m of res[2].matchAll(/(\w+)=(\S+)/g)) fields[m[1]] = m[2];
  out.result = { ok: res[1] === 'ok', text: res[2], fields };
  return out.result;
}

/** A guest verified its data when it reported `RESULT ok` with a sector count (not a bench run). */
export function isVerified(result: GuestResult | null): boolean {
  return !!result && result.ok && result.fields.sectors !== undefined && Number(result.fields.sectors) > 0;
}

/** Bytes per second of the verify phase (write + read back), or null without both marks. */
export function verifiedBytesPerSecond(out: GuestOutput): number | null {
  const start = out.marks['verify-start'];
  const end = out.marks['verify-end'];
  const bytes = Number(out.result?.fields.bytes);
  if (start === undefined || end === undefined || !(end > start) || !isVerified(out.result) || !bytes) return null;
  // Each byte is written once and read once; the figure counts verified bytes.
  return bytes / ((end - start) / 1e6);
}
