// `muxvisor run --access-log` with a config's scripted guest (msgpack), read back with `muxvisor
// log`; bad input to the log commands names what is wrong and where.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../src/bin/muxvisor.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'muxvisor-log-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 50_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A config with one ATA disk (its own image and socket) and one scripted guest, alice. */
function config(name: string): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      socket: join(dir, `${name}.sock`),
      devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'file', path: join(dir, `${name}.img`), sizeMiB: 4, create: true } }],
      guests: [{ name: 'alice', run: { type: 'scripted', driver: 'ata', options: { seconds: 0.3 } }, grants: [{ device: 'disk0', window: { startLba: 0, sectors: 4096 } }] }],
    }),
  );
  return file;
}

const jsonLog = join(dir, 'run.jsonl');

describe('muxvisor run --access-log', () => {
  it('run --access-log (msgpack): a config\'s scripted guest is recorded', async () => {
    const file = join(dir, 'run.mpk');
    const [r, j] = await Promise.all([cli(['run', config('a'), '--exit-when-done', '--access-log', file]), cli(['run', config('b'), '--exit-when-done', '--access-log', jsonLog])]);
    expect(r.code, r.stderr).toBe(0);
    expect(j.code, j.stderr).toBe(0);
    const shown = await cli(['log', 'show', file, '--register', 'ATA_REG_CMD', '--no-events']);
    expect(shown.stdout).toMatch(/alice\s+pio\s+w\s+ATA_REG_CMD\s+0x1f7\s+= 0xec IDENTIFY DEVICE/);
    const stats = JSON.parse((await cli(['--json', 'log', 'stats', file])).stdout) as { guests: { guest: string }[]; events: Record<string, number> };
    expect(stats.guests.map((g) => g.guest)).toEqual(['alice']);
    expect(stats.events.switch).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('bad input: a line that is no record names file and line; a bad extension and a missing file are named', async () => {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, readFileSync(jsonLog, 'utf8').split('\n').slice(0, 3).join('\n') + '\n{"a":1}\n');
    const r = await cli(['log', 'stats', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${bad}:4: not an access log record`);
    expect((await cli(['exec', '--access-log', join(dir, 'x.log'), '--', 'true'])).stderr).toMatch(/unknown extension "\.log" \(use \.jsonl or \.json for JSON lines, \.mpk for msgpack\)/);
    expect((await cli(['log', 'show', join(dir, 'none.jsonl')])).stderr).toMatch(/none\.jsonl: no such file/);
  }, 60_000);
});
