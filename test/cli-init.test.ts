// `muxvisor init device|machine|policy NAME`: the templates, as generated in a folder outside
// the repository with no muxvisor installed there, pass check-machine / check-policy and run
// in a config (two guests share the template device through the template machine and policy;
// the same config without the MUX mixes their transactions). Through the real CLI.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = resolve('src/bin/muxvisor.mjs');
const dir = mkdtempSync(join(tmpdir(), 'muxvisor-init-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8' });

/** Two scripted guests on the template device; `mux`: through the template machine and policy. */
function writeConfig(file: string, mux: boolean): string {
  const device = mux
    ? { id: 't0', kind: 'tally', model: './tally.ts', mux: { machine: './tally-mux.ts' }, policy: { module: './fair-turns.ts' } }
    : { id: 't0', kind: 'tally', model: './tally.ts' };
  const guest = (name: string) => ({ name, run: { type: 'scripted', driver: './tally-driver.mjs' }, grants: [{ device: 't0', ...(mux ? {} : { shared: true }) }] });
  writeFileSync(join(dir, file), JSON.stringify({ socket: `${file}.sock`, devices: [device], guests: [guest('g1'), guest('g2')] }));
  return file;
}

describe('muxvisor init', () => {
  it('writes NAME.ts for a device, a machine and a policy, and refuses to overwrite or a bad name', () => {
    for (const [what, name] of [['device', 'tally'], ['machine', 'tally-mux'], ['policy', 'fair-turns']]) {
      const r = cli('init', what, name);
      expect(r.stderr, what).toBe('');
      expect(r.status, what).toBe(0);
      expect(r.stdout, what).toContain(`wrote ./${name}.ts`);
      expect(readFileSync(join(dir, `${name}.ts`), 'utf8'), what).toMatch(/from 'muxvisor\/(device|define|policy)'/);
    }
    const again = cli('init', 'policy', 'fair-turns');
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/fair-turns\.ts exists \(give --force to overwrite it\)/);
    const bad = cli('init', 'machine', 'Bad_Name');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/bad name "Bad_Name"/);
    const sub = cli('--json', 'init', 'device', 'other', '--dir', 'sub');
    expect(JSON.parse(sub.stdout)).toMatchObject({ ok: true, what: 'device', file: join(dir, 'sub', 'other.ts') });
  });

  it('the machine passes check-machine and the policy passes check-policy as generated', () => {
    const m = cli('check-machine', './tally-mux.ts');
    expect(m.stdout + m.stderr).toMatch(/^ok: a safe state exists/m);
    expect(m.status).toBe(0);
    const p = cli('check-policy', './fair-turns.ts', '--runs', '10');
    expect(p.stdout + p.stderr).toMatch(/^ok: safety/m);
    expect(p.stdout).toContain('policy "fair-turns"');
    expect(p.status).toBe(0);
  });

  it('the three run in a config: two guests share the device, each transaction whole; without the MUX they mix', () => {
    copyFileSync('test/fixtures/user-package/tally-driver.mjs', join(dir, 'tally-driver.mjs'));
    const ok = cli('--log-level', 'info', 'run', writeConfig('shared.json', true), '--exit-when-done');
    expect(ok.stderr).toContain('"guest":"g1","how":"scripted","ok":true,"detail":"40 transactions, sums right"');
    expect(ok.stderr).toContain('"guest":"g2","how":"scripted","ok":true,"detail":"40 transactions, sums right"');
    expect(ok.status).toBe(0);
    const mixed = cli('--log-level', 'info', 'run', writeConfig('no-mux.json', false), '--exit-when-done');
    expect(mixed.stderr).toMatch(/"ok":false,"detail":"round \d+: (SUM \d+, expected \d+|not BUSY inside the transaction)"/);
    expect(mixed.status).not.toBe(0);
  });
});
