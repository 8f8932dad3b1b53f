// NO_COLOR (https://no-color.org): colour in the logs (pino-pretty) and the bench table on a
// terminal, none when NO_COLOR is set and not empty. The terminal is a real pseudo-terminal:
// `script` (util-linux) runs the CLI in one.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT, useCliProcesses } from './helpers/cli-process.ts';

const { tmp } = useCliProcesses('mvcolor-');

/** Run `muxvisor ARGS` on a pseudo-terminal; everything it wrote to the terminal (stdout and stderr). */
function onTerminal(args: string, env: Record<string, string | undefined>): Promise<{ code: number | null; out: string }> {
  const e = { ...process.env, ...env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete e[k];
  const child = spawn('script', ['-qfec', `${process.execPath} ${BIN} ${args}`, '/dev/null'], { cwd: ROOT, env: e, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((res) => child.on('close', (code) => res({ code, out })));
}

/** An ANSI colour or style sequence (SGR): ESC [ ... m. */
const SGR = /\x1b\[[0-9;]*m/;

describe('NO_COLOR', () => {
  it('the logs (pino-pretty) are coloured on a terminal, and not with NO_COLOR', async () => {
    // One folder each: the three run at once, each on its own socket.
    const run = (env: Record<string, string | undefined>): ReturnType<typeof onTerminal> => {
      const config = join(tmp(), 'c.json');
      writeFileSync(config, JSON.stringify({ socket: 's.sock', devices: [{ id: 's', kind: 'scratch' }], guests: [{ name: 'a', run: { type: 'user', argv: ['true'] }, grants: [{ device: 's' }] }] }));
      return onTerminal(`run --exit-when-done ${config}`, env);
    };
    const [plain, coloured, empty] = await Promise.all([run({ NO_COLOR: '1' }), run({ NO_COLOR: undefined }), run({ NO_COLOR: '' })]);
    for (const r of [plain, coloured, empty]) {
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/INFO.*\(muxvisor\).*device ready/);
    }
    expect(coloured.out).toMatch(SGR);
    // An empty NO_COLOR does not count (no-color.org).
    expect(empty.out).toMatch(SGR);
    expect(plain.out).not.toMatch(SGR);
    expect(plain.out).not.toContain('\x1b[');
  });

  it('the bench table marks met targets in colour on a terminal, not with NO_COLOR', async () => {
    const args = 'bench --quick --only fairness';
    const [plain, coloured] = await Promise.all([onTerminal(args, { NO_COLOR: 'yes' }), onTerminal(args, { NO_COLOR: undefined })]);
    expect(plain.code).toBe(0);
    expect(coloured.code).toBe(0);
    expect(coloured.out).toContain('\x1b[32myes\x1b[0m');
    expect(plain.out).toMatch(/fairness\.jainEqual .* yes /);
    expect(plain.out).not.toContain('\x1b[');
  });
});
