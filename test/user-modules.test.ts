// Users' own policy and machine modules load wherever they live: TypeScript in a folder whose
// package.json says "type": "commonjs" (as in a folder without one), plain .mjs, and CommonJS
// .js. Through the real CLI, whose tsx loader is what a user runs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const FIX = 'test/fixtures';
const cli = (...args: string[]) => spawnSync(process.execPath, ['src/bin/muxvisor.mjs', ...args], { encoding: 'utf8' });

describe('user modules outside an ES-module package', () => {
  it('check-machine loads a TypeScript machine from a "type": "commonjs" folder', () => {
    const r = cli('check-machine', `${FIX}/commonjs-scope/toy-machine.ts`);
    expect(r.stderr).not.toMatch(/cannot load module/);
    expect(r.stdout).toMatch(/^ok: a safe state exists/m);
    expect(r.status).toBe(0);
  });

  it('check-policy loads TypeScript (with imports or none), .mjs and CommonJS .js policies', () => {
    for (const [file, name] of [
      ['commonjs-scope/keep-owner.ts', 'keep-owner-cjs-scope'],
      ['commonjs-scope/no-imports.ts', 'no-imports'],
      ['policies/js/longest-waiting.mjs', 'longest-waiting-mjs'],
      ['policies/js/first-waiting.cjs.js', 'first-waiting-cjs'],
    ]) {
      const r = cli('check-policy', `${FIX}/${file}`, '--runs', '5', '--seed', '1');
      expect(r.stderr, file).not.toMatch(/cannot load module/);
      expect(r.stdout, file).toContain(`policy "${name}"`);
      expect(r.stdout, file).toMatch(/^ok: safety/m);
      expect(r.status, file).toBe(0);
    }
  });

  it('a TypeScript file that does not compile is an error naming the file and the line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'muxvisor-user-'));
    try {
      const file = join(dir, 'broken.ts');
      writeFileSync(file, 'interface A { x: number }\nexport default function create( {\n');
      const r = cli('check-policy', file);
      expect(r.status).toBe(1);
      expect(r.stdout + r.stderr).toMatch(new RegExp(`cannot load module: .*\\n?.*broken\\.ts:3:0: ERROR`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('run loads TypeScript and CommonJS scripted drivers from a "type": "commonjs" folder, as the checks load theirs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'muxvisor-user-'));
    try {
      const file = join(dir, 'run.json');
      const driver = (f: string) => ({ type: 'scripted', driver: join(process.cwd(), FIX, 'commonjs-scope', f) });
      writeFileSync(
        file,
        JSON.stringify({
          socket: join(dir, 'mv.sock'),
          devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'memory', sizeMiB: 1 } }],
          guests: [
            { name: 'ts', run: driver('scripted-driver.ts'), grants: [{ device: 'disk0', window: { startLba: 0, sectors: 64 } }] },
            { name: 'cjs', run: driver('scripted-driver.js'), grants: [{ device: 'disk0', window: { startLba: 64, sectors: 64 } }] },
          ],
        }),
      );
      const r = spawnSync(process.execPath, ['src/bin/muxvisor.mjs', '--json', '--log-level', 'warn', 'run', file, '--exit-when-done'], { encoding: 'utf8', timeout: 60_000 });
      const guests = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.event === 'guest');
      for (const name of ['ts', 'cjs']) {
        const g = guests.find((e) => e.guest === name);
        expect(g, r.stdout + r.stderr).toMatchObject({ ok: true });
        expect(g.detail).toMatch(/^cjs-scope driver read status 0x[0-9a-f]+$/);
      }
      expect(r.status, r.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
