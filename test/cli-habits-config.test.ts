// Configuration errors a person can act on, through the real `muxvisor run`: map, region and
// port-range mistakes name the file and the JSON path; a JSON syntax error gives line and
// column; an unknown field names the nearest known one; a missing image says `"create": true`
// makes it. And relative paths in a user guest's `run` (cwd, the program) resolve against the
// configuration's folder, as the README says, wherever muxvisor runs from.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.ts';
import { ConfigError, loadConfig } from '../src/config/load.ts';
import { type CliResult, ROOT, useCliProcesses } from './helpers/cli-process.ts';

const { tmp, cli } = useCliProcesses('mvcfghabits-');

/**
 * The CLI in this process (src/cli/main.ts, as src/bin/muxvisor.mjs calls it) with its stdout and
 * stderr captured: a process per case costs seconds of CPU on a loaded machine. One at a time.
 */
async function muxvisor(...args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const [out, err] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((s: string) => ((stdout += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((stderr += s), true)) as typeof process.stderr.write;
  try {
    const code = await main(['node', 'muxvisor', ...args]);
    return { code, stdout, stderr };
  } finally {
    [process.stdout.write, process.stderr.write] = [out, err];
  }
}

const ata = { id: 'disk0', kind: 'ata', backend: { type: 'memory', sizeMiB: 1 } };

describe('configuration errors name the file and the JSON path', () => {
  const cases: Array<[string, unknown, string]> = [
    ['a map entry naming a region the device lacks', { devices: [{ id: 's', kind: 'scratch', map: { regz: '0x300' } }] }, 'devices[0].map.regz: scratch has no region "regz" (did you mean "regs"?); its regions: "regs", "mem"'],
    ['a mapped port region past 0xffff', { devices: [{ id: 's', kind: 'scratch', map: { regs: '0xfff0' } }] }, 'devices[0].map.regs: region regs of "s", pio 0xfff0-0x10017 ends beyond the 64 KiB port space (last port 0xffff)'],
    [
      'a mapped region over another device\'s legacy ports',
      { devices: [ata, { id: 's', kind: 'scratch', map: { regs: '0x1f4' } }] },
      'devices[1].map.regs: region regs of "s", pio 0x1f4-0x21b overlaps region cmd of "disk0", pio 0x1f0-0x1f7 (devices[0])',
    ],
    [
      'a device at its legacy ports over a mapped region',
      { devices: [{ id: 's', kind: 'scratch', map: { regs: '0x1f0' } }, ata] },
      'devices[1]: region cmd of "disk0", pio 0x1f0-0x1f7 overlaps region regs of "s", pio 0x1f0-0x217 (devices[0].map.regs) (its legacy base; "map": {"cmd": ...} moves it)',
    ],
    ['a port range past 0xffff', { guests: [{ name: 'g', grants: [{ space: 'pio', start: '0xff00', end: '0x10000' }] }] }, 'guests[0].grants[0].end: port 0x10000 is beyond 0xffff'],
    ['a reversed range', { guests: [{ name: 'g', grants: [{ space: 'mmio', start: '0xfe001000', end: '0xfe000000' }] }] }, 'guests[0].grants[0]: end 0xfe000000 is before start 0xfe001000'],
    ['an address JSON numbers cannot hold', { guests: [{ name: 'g', grants: [{ space: 'mmio', start: '0x10', end: '0x1ffffffffffffffff' }] }] }, 'guests[0].grants[0].end: expected an address below 2^53'],
    ['a misspelt field', { guests: [{ name: 'g', grnats: [] }] }, 'guests[0]: unknown field "grnats" (did you mean "grants"?)'],
    ['a misspelt field of a grant (a union of shapes)', { devices: [ata], guests: [{ name: 'g', grants: [{ devcie: 'disk0' }] }] }, 'guests[0].grants[0]: unknown field "devcie" (did you mean "device"?)'],
    ['a misspelt field of a backend', { devices: [{ ...ata, backend: { type: 'file', path: 'x.img', create: true, sizeMib: 1 } }] }, 'devices[0].backend: unknown field "sizeMib" (did you mean "sizeMiB"?)'],
    ['a field nothing is near', { pci: { colour: 'blue' } }, 'pci: unknown field "colour"\n'],
    ['an image that does not exist', { devices: [{ ...ata, backend: { type: 'file', path: 'disk.img' } }] }, 'devices[0].backend.path: image DIR/disk.img does not exist; add "create": true (and "sizeMiB") to make an empty sparse one'],
  ];
  it.each(cases)('%s', async (_what, config, expected) => {
    const dir = tmp();
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ socket: 'mv.sock', ...(config as object) }));
    const r = await muxvisor('run', file);
    const j = await muxvisor('--json', 'run', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^muxvisor: ${file}: invalid configuration:\n`));
    expect(r.stderr).toContain(`\n  ${expected.replace('DIR', dir)}`);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, issues: expect.arrayContaining([expect.objectContaining({ path: expected.split(':')[0] })]) });
  });

  it('the same through the real binary', async () => {
    const file = join(tmp(), 'bad.json');
    writeFileSync(file, JSON.stringify({ socket: 'mv.sock', devices: [{ id: 's', kind: 'scratch', map: { regz: '0x300' } }] }));
    const r = await cli('run', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`muxvisor: ${file}: invalid configuration:\n  devices[0].map.regz: scratch has no region "regz" (did you mean "regs"?); its regions: "regs", "mem"\n`);
  });

  it('a JSON syntax error gives the line and column and shows the line', async () => {
    const dir = tmp();
    const file = join(dir, 'typo.json');
    writeFileSync(file, '{\n  "devices": [\n    { "id": "s" "kind": "scratch" }\n  ]\n}\n');
    const noPosition = join(dir, 'literal.json'); // V8 gives no position for this one
    writeFileSync(noPosition, '{\n  "pci": { "hostBridge": tru }\n}\n');
    const cut = join(dir, 'cut.json');
    writeFileSync(cut, '{\n  "devices": [\n');
    const [a, b, c] = [await muxvisor('run', file), await muxvisor('run', noPosition), await muxvisor('run', cut)];
    expect(a.code).toBe(1);
    expect(a.stderr).toBe(`muxvisor: ${file}:3:17: not valid JSON: Expected ',' or '}' after property value\n      { "id": "s" "kind": "scratch" }\n                  ^\n`);
    expect(b.stderr).toContain(`${noPosition}:2:29: not valid JSON: Unexpected token ' '\n    "pci": { "hostBridge": tru }\n                              ^`);
    expect(c.stderr).toContain(`${cut}:2:15: not valid JSON: Unexpected end of JSON input`);
  });

  it('"create": true makes the missing image load; a read-only one gets no such hint', async () => {
    const dir = tmp();
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ devices: [{ ...ata, backend: { type: 'file', path: 'disk.img', create: true, sizeMiB: 1 } }] }));
    await expect(loadConfig(file)).resolves.toBeTruthy();
    writeFileSync(file, JSON.stringify({ devices: [{ ...ata, backend: { type: 'file', path: 'disk.img', readOnly: true } }] }));
    const err = (await loadConfig(file).catch((e) => e)) as ConfigError;
    expect(err.issues).toEqual([{ path: 'devices[0].backend.path', message: `image ${join(dir, 'disk.img')} does not exist` }]);
  });
});

describe('relative paths of a user guest resolve against the configuration\'s folder', () => {
  it('loadConfig: cwd and a program named by a path; a bare program name is left to PATH', async () => {
    const dir = tmp();
    const file = join(dir, 'c.json');
    const guests = [
      { name: 'a', run: { type: 'user', argv: ['./bin/drv', './not-a-path-for-us'], cwd: 'work' } },
      { name: 'b', run: { type: 'user', argv: ['bin/drv'] } },
      { name: 'c', run: { type: 'user', argv: ['lspci', '-n'] } },
      { name: 'd', run: { type: 'user', argv: ['/usr/bin/true'], cwd: '/tmp' } },
    ];
    writeFileSync(file, JSON.stringify({ guests }));
    const c = await loadConfig(file);
    expect(c.guests.map((g) => g.run)).toEqual([
      { type: 'user', argv: [join(dir, 'bin/drv'), './not-a-path-for-us'], cwd: join(dir, 'work') },
      { type: 'user', argv: [join(dir, 'bin/drv')] },
      { type: 'user', argv: ['lspci', '-n'] },
      { type: 'user', argv: ['/usr/bin/true'], cwd: '/tmp' },
    ]);
  });

  it('muxvisor run, started elsewhere, runs ./bin/PROGRAM from the folder in the folder\'s cwd', async () => {
    // The program: a copy of sh beside the configuration, run under the trap shim.
    const dir = tmp();
    mkdirSync(join(dir, 'bin'));
    mkdirSync(join(dir, 'work'));
    copyFileSync('/bin/sh', join(dir, 'bin/mysh'));
    const file = join(dir, 'c.json');
    const script = 'pwd > "$OUT"; echo "$0" >> "$OUT"';
    writeFileSync(
      file,
      JSON.stringify({
        socket: 'mv.sock',
        guests: [
          { name: 'a', run: { type: 'user', argv: ['./bin/mysh', '-c', script], cwd: 'work', env: { OUT: join(dir, 'a.txt') } } },
          { name: 'b', run: { type: 'user', argv: ['bin/mysh', '-c', script], env: { OUT: join(dir, 'b.txt') } } },
        ],
      }),
    );
    const r = await cli('--log-level', 'warn', 'run', '--exit-when-done', file);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe(`${join(dir, 'work')}\n${join(dir, 'bin/mysh')}\n`);
    // Without cwd the program runs where muxvisor does (the test starts it in the repository).
    expect(readFileSync(join(dir, 'b.txt'), 'utf8')).toBe(`${ROOT.replace(/\/$/, '')}\n${join(dir, 'bin/mysh')}\n`);
  });
});
