// `muxvisor run`: a second supervisor on a live socket fails instead of taking it over (a
// stale one is replaced); a bad policy, machine or backend is a configuration error that
// names the file and the JSON path.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PeerClient } from '../src/channel/peer-client.ts';
import { SCRATCH_MAGIC, SCR_ID } from '../src/devices/scratch.ts';
import { useCliProcesses } from './helpers/cli-process.ts';

const { tmp, start } = useCliProcesses('mvrun-');

const listening = (run: ReturnType<typeof start>): Promise<void> => run.printed('"listening"');

function scratchConfig(dir: string): string {
  const config = join(dir, 'ok.json');
  writeFileSync(config, JSON.stringify({ socket: 'mv.sock', devices: [{ id: 's', kind: 'scratch', map: { regs: '0x300' } }], guests: [{ name: 'g', auth: { uid: process.getuid!() }, grants: [{ device: 's' }] }] }));
  return config;
}

describe('muxvisor run: the socket', () => {
  it('a second run on a socket another supervisor listens on fails and leaves the first one serving', async () => {
    const dir = tmp();
    const sock = join(dir, 'mv.sock');
    const config = scratchConfig(dir);
    const first = start(['--json', '--log-level', 'warn', 'run', config]);
    await listening(first);
    const second = await start(['--json', '--log-level', 'warn', 'run', config]).result;
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain(`another supervisor is listening on ${sock}`);
    expect(JSON.parse(second.stdout)).toMatchObject({ ok: false, error: expect.stringContaining(`another supervisor is listening on ${sock}`) });
    // The first supervisor still owns its socket file and answers on it.
    expect(lstatSync(sock).isSocket()).toBe(true);
    const g = await PeerClient.connect(sock, { guest: 'g' });
    expect(await g.access({ space: 'pio', addr: 0x300 + SCR_ID, size: 4, dir: 'read' })).toEqual({ value: SCRATCH_MAGIC });
    first.child.kill('SIGTERM');
    expect((await first.result).code).toBe(0);
    await g.closed;
  });

  it('a stale socket file (its supervisor was killed) is replaced', async () => {
    const dir = tmp();
    const sock = join(dir, 'mv.sock');
    // A process that listens and dies without unlinking its socket file.
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(lstatSync(sock).isSocket()).toBe(true);
    const run = start(['--json', '--log-level', 'warn', 'run', scratchConfig(dir)]);
    await listening(run);
    const g = await PeerClient.connect(sock, { guest: 'g' });
    expect(await g.access({ space: 'pio', addr: 0x300 + SCR_ID, size: 4, dir: 'read' })).toEqual({ value: SCRATCH_MAGIC });
    run.child.kill('SIGTERM');
    expect((await run.result).code).toBe(0);
    expect(existsSync(sock)).toBe(false);
  });
});

describe('muxvisor run: device settings are configuration errors with their JSON path', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['an unknown policy name', { policy: { name: 'round-robbin' } }, 'devices[0].policy.name: unknown policy "round-robbin"; shipped: round-robin, weighted-fair, priority, edf'],
    ['a policy module that does not exist', { policy: { module: 'no-such-policy.ts' } }, 'devices[0].policy.module: policy DIR/no-such-policy.ts: cannot load module'],
    ['a bad nbd backend', { backend: { type: 'nbd' } }, 'devices[0].backend: give either `socket`'],
    ['a bad deadline', { properties: { deadlineNs: -5 } }, 'devices[0].properties.deadlineNs: '],
    ['a machine module that does not exist', { properties: { machine: 'my-machines/ata.ts' } }, 'devices[0].properties.machine: mux definition DIR/my-machines/ata.ts: cannot load module'],
  ];
  for (const [what, patch, message] of cases)
    it(what, async () => {
      const dir = tmp();
      const config = join(dir, 'bad.json');
      const device = { id: 'disk0', kind: 'ata', backend: { type: 'memory', sizeMiB: 1 }, ...patch };
      writeFileSync(config, JSON.stringify({ socket: 'mv.sock', devices: [device] }));
      const r = await start(['--json', 'run', config]).result;
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`${config}: invalid configuration:\n  ${message.replace('DIR', dir)}`);
      expect(r.stderr).not.toMatch(/Cannot find module '.*round-robbin'/);
      const out = JSON.parse(r.stdout);
      expect(out).toMatchObject({ ok: false, issues: [{ path: message.split(':')[0] }] });
    });

  it('a policy on a device kind without a MUX', async () => {
    const dir = tmp();
    const config = join(dir, 'bad.json');
    writeFileSync(config, JSON.stringify({ socket: 'mv.sock', devices: [{ id: 's', kind: 'scratch', policy: { name: 'round-robin' } }] }));
    const r = await start(['run', config]).result;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${config}: invalid configuration:\n  devices[0].policy: device kind "scratch" has no MUX`);
  });
});
