// At log level `trace` the supervisor logs every access of every guest with its answer: the
// register trace a driver developer reads. Below `trace` nothing per access is logged.
import { Writable } from 'node:stream';
import pino from 'pino';
import { expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { Supervisor } from '../src/supervisor.ts';

function capture(level: string): { logger: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const sink = new Writable({ write: (chunk, _enc, done) => (out.push(String(chunk)), done()) });
  return { logger: pino({ level }, sink), lines: () => out.join('').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

async function accesses(level: string): Promise<Array<Record<string, unknown>>> {
  const config = parseConfig({
    devices: [{ id: 'disk', kind: 'ata', backend: { type: 'memory', sizeMiB: 1 } }],
    guests: [{ name: 'g', grants: [{ device: 'disk' }] }],
  });
  const { logger, lines } = capture(level);
  const sup = new Supervisor({ config, logger });
  await sup.start();
  const g = sup.attachLocalGuest('g');
  await g.access({ space: 'pio', addr: 0x1f6, size: 1, dir: 'write', value: 0xe0 });
  await g.access({ space: 'pio', addr: 0x1f7, size: 1, dir: 'read' });
  await g.access({ space: 'pio', addr: 0x80, size: 1, dir: 'read' }); // not granted
  await sup.close();
  return lines().filter((l) => l.level === 10);
}

it('logs every access and its answer at level trace, with guest, space and address', async () => {
  const traced = await accesses('trace');
  const msgs = traced.map((l) => l.msg);
  expect(msgs).toContain('pio write 0x1f6/1 = 0xe0');
  expect(msgs).toContain('pio read 0x1f7/1 -> 0x50'); // DRDY|DSC after power-on
  const denied = traced.find((l) => l.addr === '0x80')!;
  expect(denied).toMatchObject({ guest: 'g', space: 'pio', msg: 'pio read 0x80/1 -> 0xff' });
  expect(denied.error).toBeTruthy();
});

it('logs nothing per access below trace', async () => {
  expect(await accesses('debug')).toEqual([]);
});
