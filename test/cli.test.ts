import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PeerClient } from '../src/channel/peer-client.ts';
import { SCRATCH_MAGIC, SCR_ID } from '../src/devices/scratch.ts';
import { ROOT, useCliProcesses } from './helpers/cli-process.ts';
import { SUBCOMMAND_MODULES } from '../src/cli/main.ts';

const { tmp, start, cli } = useCliProcesses('mvcli-');

describe('muxvisor CLI', () => {
  it('--help lists the sub-commands that exist, --version prints the package version', async () => {
    const [help, version] = await Promise.all([cli('--help'), cli('--version')]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: muxvisor/);
    expect(help.stdout).toMatch(/--log-level/);
    expect(help.stdout).toMatch(/--json/);
    const present = SUBCOMMAND_MODULES.filter((m) => existsSync(join(ROOT, 'src/cli', `${m}.ts`)));
    expect(present).toContain('run');
    for (const m of present) expect(help.stdout).toMatch(new RegExp(`^\\s+${m}\\b`, 'm'));
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('run: a wrong field exits non-zero naming the JSON path; a missing file names the file', async () => {
    const dir = tmp();
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ devices: [{ id: 's', kind: 'scratch' }], guests: [{ name: 'g', weight: 'heavy', grants: [{ device: 's' }] }] }));
    const missing = join(dir, 'missing.json');
    const [r, m, u] = await Promise.all([cli('run', bad), cli('--json', 'run', missing), cli('no-such-command')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(bad);
    expect(r.stderr).toMatch(/guests\[0\]\.weight: .*expected number/);
    expect(r.stdout).toBe('');
    expect(m.code).not.toBe(0);
    expect(m.stderr).toContain(`cannot read configuration file ${missing}`);
    // With --json, stdout holds only JSON.
    expect(JSON.parse(m.stdout)).toMatchObject({ ok: false, error: expect.stringContaining(missing) });
    expect(u.code).not.toBe(0);
    expect(u.stderr).toMatch(/unknown command/);
  });

  it('run serves guests on the socket until SIGTERM, then exits 0', async () => {
    const dir = tmp();
    const sock = join(dir, 'mv.sock');
    const config = join(dir, 'ok.json');
    // `muxvisor run` opens a guest that connects by itself only to the credential its `auth` names.
    writeFileSync(config, JSON.stringify({ socket: 'mv.sock', devices: [{ id: 's', kind: 'scratch', map: { regs: '0x300' } }], guests: [{ name: 'g', auth: { uid: process.getuid!() }, grants: [{ device: 's' }] }] }));
    const run = start(['--json', '--log-level', 'warn', 'run', config]);
    await run.printed('"listening"');
    const first = JSON.parse(run.stdout().split('\n')[0]);
    expect(first).toMatchObject({ event: 'listening', socket: sock, guests: ['g'] });
    const g = await PeerClient.connect(sock, { guest: 'g' });
    expect(await g.access({ space: 'pio', addr: 0x300 + SCR_ID, size: 4, dir: 'read' })).toEqual({ value: SCRATCH_MAGIC });
    run.child.kill('SIGTERM');
    const r = await run.result;
    expect(r.code).toBe(0);
    await g.closed;
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[1]).toMatchObject({ event: 'stopped', signal: 'SIGTERM' });
    expect(lines[1].stats.guests[0]).toMatchObject({ guest: 'g', accesses: 1 });
    expect(existsSync(sock)).toBe(false);
  });
});
