// The access log (`--access-log`): a real 3-guest demo's log validates against the shipped
// JSON Schema (ajv), names the ATA registers, carries the MUX events; msgpack holds the same
// records; recording does not change what the guests see; the writer blocks, never drops.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, describe, expect, it } from 'vitest';
import { runDiskDemo } from '../src/demo/disk-demo.ts';
import { readAll } from '../src/log/read.ts';
import type { AccessRecord, EventRecord, LogRecord } from '../src/log/record.ts';
import { LogWriter, formatOf } from '../src/log/writer.ts';

const dir = mkdtempSync(join(tmpdir(), 'muxvisor-access-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const schema = JSON.parse(readFileSync(new URL('../src/log/access-log.schema.json', import.meta.url), 'utf8'));
const validate = new Ajv({ allErrors: true, validateFormats: false }).compile(schema);

const demo = (accessLog?: string) =>
  runDiskDemo({ guests: 3, seconds: 30, policy: 'round-robin', backend: 'model', mode: 'mixed', seed: 5, maxOps: 40, maxSectors: 8, accessLog });

const perGuest = (r: Awaited<ReturnType<typeof demo>>) => r.summary.devices[0].perGuest.map((g) => ({ ...g }));

describe('access log', () => {
  it('a 3-guest demo: every line validates against the schema; registers named; switches, replays, IRQs and DMA recorded', async () => {
    const file = join(dir, 'demo.jsonl');
    const r = await demo(file);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThan(500);
    for (const [i, line] of lines.entries()) {
      const ok = validate(JSON.parse(line));
      if (!ok) throw new Error(`line ${i + 1} does not validate: ${JSON.stringify(validate.errors)}\n${line.slice(0, 300)}`);
    }
    const recs = lines.map((l) => JSON.parse(l) as LogRecord);
    expect(recs[0].type).toBe('header');
    expect(recs.at(-1)!.type).toBe('end');
    const acc = recs.filter((x): x is AccessRecord => x.type === 'access');
    const ev = recs.filter((x): x is EventRecord => x.type === 'event');
    expect(new Set(acc.map((a) => a.guest))).toEqual(new Set(['guest1', 'guest2', 'guest3']));
    // The register names come from machines/ata's map (Linux's names).
    const cmds = acc.filter((a) => a.reg === 'ATA_REG_CMD');
    expect(cmds.length).toBeGreaterThan(3 * 40);
    expect(cmds.every((a) => a.dir === 'w' && a.addr === 0x1f7 && a.device === 'disk0')).toBe(true);
    expect(cmds.filter((a) => a.value === 0xec)).toHaveLength(3); // each guest's IDENTIFY DEVICE
    expect(acc.some((a) => a.reg === 'ATA_REG_STATUS' && typeof a.answer === 'number')).toBe(true);
    expect(acc.some((a) => a.reg === 'ATA_DMA_CMD')).toBe(true);
    // PIO data: length and CRC; the bytes of writes and of IDENTIFY data (a replay normalises it).
    const reads = acc.filter((a) => a.reg === 'ATA_REG_DATA' && a.answerData?.len === a.count * a.size && a.count > 1);
    expect(reads.filter((a) => typeof a.answerData!.bytes === 'string')).toHaveLength(3); // each guest's IDENTIFY
    expect(reads.length).toBeGreaterThan(3);
    expect(acc.some((a) => a.reg === 'ATA_REG_DATA' && typeof a.data?.bytes === 'string')).toBe(true);
    // The chart around disk accesses, the owner, stalls while another guest owned the disk.
    const disk = acc.filter((a) => a.device === 'disk0' && !a.error);
    expect(disk.every((a) => a.before !== undefined && a.after !== undefined && a.owner === a.guest)).toBe(true);
    expect(disk.some((a) => a.before === 'idle' && a.after !== 'idle')).toBe(true);
    expect(acc.some((a) => a.stallNs > 0)).toBe(true);
    const kinds = new Set(ev.map((e) => e.kind));
    for (const k of ['switch', 'release', 'replay', 'irq', 'dma']) expect(kinds, k).toContain(k);
    expect(ev.filter((e) => e.kind === 'switch').length).toBe(r.summary.devices[0].switches);
    expect(ev.some((e) => e.kind === 'dma' && e.dma?.dir === 'read' && typeof e.dma.bytes === 'string')).toBe(true);
    expect(ev.some((e) => e.kind === 'dma' && e.dma?.dir === 'write' && e.dma.bytes === undefined)).toBe(true);
    const end = recs.at(-1) as { accesses: number; events: number };
    expect(end.accesses).toBe(acc.length);
    expect(end.events).toBe(ev.length);
    // Times only grow within a guest (one access at a time each).
    for (const g of ['guest1', 'guest2', 'guest3']) {
      const ts = acc.filter((a) => a.guest === g).map((a) => a.t);
      expect(ts).toEqual([...ts].sort((a, b) => a - b));
    }
  }, 60_000);

  it('msgpack (.mpk) holds the same kinds of records, with bytes as binary', async () => {
    const file = join(dir, 'demo.mpk');
    await demo(file);
    const recs = await readAll(file);
    expect(recs[0].type).toBe('header');
    expect(recs.at(-1)!.type).toBe('end');
    const acc = recs.filter((x): x is AccessRecord => x.type === 'access');
    expect(acc.filter((a) => a.reg === 'ATA_REG_CMD').length).toBeGreaterThan(3 * 40);
    const w = acc.find((a) => a.data?.bytes)!;
    expect(w.data!.bytes).toBeInstanceOf(Uint8Array);
    expect(w.data!.bytes!.length).toBe(w.data!.len);
    // The same record, validated in its JSON form.
    const { bytes, ...rest } = w.data!;
    expect(validate({ ...w, data: { ...rest, bytes: Buffer.from(bytes!).toString('base64') } })).toBe(true);
  }, 60_000);

  it('recording does not change behaviour: the seeded demo verifies the same work with and without the log', async () => {
    const without = await demo();
    const withLog = await demo(join(dir, 'same.jsonl'));
    expect(perGuest(withLog)).toEqual(perGuest(without));
    for (const r of [without, withLog]) {
      expect(r.summary.devices[0].unsafeSwitches).toBe(0);
      expect(r.summary.devices[0].perGuest.every((g) => g.verified && g.errors === 0)).toBe(true);
    }
  }, 60_000);

  it('the writer blocks (writes synchronously) when it falls behind, and drops nothing', async () => {
    const file = join(dir, 'burst.jsonl');
    const w = new LogWriter(file);
    const data = { len: 4096, crc: '00000000', bytes: new Uint8Array(4096).fill(7) };
    // ~60 MB handed over without yielding: the writes in flight pass the bound many times.
    for (let i = 0; i < 11_000; i++)
      w.write({ type: 'access', t: i, guest: 'g', device: 'd', space: 'pio', addr: i, reg: null, dir: 'w', size: 2, count: 2048, data, stallNs: 0, ns: 0 });
    expect(w.blocked).toBeGreaterThan(0);
    await w.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(11_000);
    expect(lines.map((l) => (JSON.parse(l) as { addr: number }).addr)).toEqual(Array.from({ length: 11_000 }, (_, i) => i));
    expect(statSync(file).size).toBeGreaterThan(11_000 * 5000);
  }, 60_000);

  it('an unknown extension is an error naming it', () => {
    expect(() => formatOf('/tmp/x.txt')).toThrow(/unknown extension "\.txt".*\.jsonl.*\.mpk/);
  });
});
