// Usage errors: with --json they print {"ok": false, "error": ...} on stdout (commander's text
// stays on stderr) and exit non-zero; `bench --only` names only bench modules that exist.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { benchModules, parseOnly } from '../src/cli/bench.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'src/bin/muxvisor.mjs');

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('usage errors with --json', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['an unknown command', ['no-such-command'], /unknown command 'no-such-command'/],
    ['a missing argument', ['run'], /missing required argument 'config'/],
    ['an unknown option', ['--bogus', 'run', 'x.json'], /unknown option '--bogus'/],
    ['a bad option value', ['check-policy', 'round-robin', '--runs', '0'], /--runs must be a whole number >= 1/],
    ['a bad choice', ['--log-level', 'loud', 'run', 'x.json'], /argument 'loud' is invalid/],
    ['no command', [], /no command given/],
  ];
  for (const [what, args, message] of cases)
    it(what, async () => {
      const r = await cli('--json', ...args);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(message.source.startsWith('no command') ? /Usage: muxvisor/ : message);
      const out = JSON.parse(r.stdout);
      expect(out).toMatchObject({ ok: false, error: expect.stringMatching(message) });
      expect(out.error).not.toMatch(/^error: /);
    });

  it('without --json a usage error leaves stdout empty', async () => {
    const r = await cli('no-such-command');
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/unknown command/);
  });

  it('--json after `--` belongs to the program, not to muxvisor', async () => {
    const r = await cli('no-such-command', '--', 'prog', '--json');
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
  });
});

describe('bench --only', () => {
  it('lists the bench modules when a name is unknown (a typo among good names too)', async () => {
    expect(benchModules()).toEqual(expect.arrayContaining(['fairness', 'mux']));
    expect(parseOnly('mux, fairness')).toEqual(['mux', 'fairness']);
    expect(() => parseOnly('mux,fairnes')).toThrow(`unknown bench module "fairnes"; available: ${benchModules().join(', ')}`);
    expect(() => parseOnly(',')).toThrow(/available: /);
    const [typo, none] = await Promise.all([cli('bench', '--only', 'mux,fairnes'), cli('--json', 'bench', '--only', 'nosuch')]);
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toMatch(/unknown bench module "fairnes"; available: .*fairness/);
    expect(typo.stdout).toBe('');
    expect(none.code).not.toBe(0);
    expect(JSON.parse(none.stdout)).toMatchObject({ ok: false, error: expect.stringMatching(/unknown bench module "nosuch"/) });
  });
});
