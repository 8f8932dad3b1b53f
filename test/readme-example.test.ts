// The configuration example in README.md is a working configuration: it validates as it
// stands, and `muxvisor run --exit-when-done` runs it (bob's program, which a reader would
// supply, left out; alice's run shortened), creating its image as the README says.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.ts';
import { BIN, ROOT } from './helpers/cli-process.ts';

function readmeConfig(): { devices: Array<Record<string, unknown>>; guests: Array<Record<string, unknown>> } & Record<string, unknown> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = /```json\n([\s\S]*?)\n```/.exec(readme);
  if (!block) throw new Error('README.md has no ```json block');
  return JSON.parse(block[1]);
}

describe('the README configuration example', () => {
  it('validates as written and runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'muxvisor-readme-'));
    try {
      const cfg = readmeConfig();
      const file = join(dir, 'muxvisor.json');
      writeFileSync(file, JSON.stringify(cfg));
      const loaded = await loadConfig(file);
      expect(loaded.guests.map((g) => g.name)).toEqual(['alice', 'bob']);

      const alice = cfg.guests[0] as { run: { options: { seconds: number } } };
      alice.run.options.seconds = 0.5;
      delete cfg.guests[1].run; // bob would be `muxvisor exec --guest bob -- ./my-driver`
      writeFileSync(file, JSON.stringify(cfg));
      const r = spawnSync(process.execPath, [BIN, '--json', '--log-level', 'warn', 'run', file, '--exit-when-done'], { cwd: dir, encoding: 'utf8', timeout: 50_000 });
      expect(r.status, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
      expect(lines[0].event).toBe('listening');
      expect(lines.find((l) => l.event === 'guest')).toMatchObject({ guest: 'alice', how: 'scripted', ok: true, detail: expect.stringMatching(/ 0 errors$/) });
      expect(lines.at(-1)).toMatchObject({ event: 'stopped', stats: { devices: [{ device: 'disk0', unsafeSwitches: 0 }, expect.anything()] } });
      // The image was created, of sizeMiB, sparse (fewer blocks than its size; alice wrote some).
      const backend = cfg.devices[0].backend as { path: string; sizeMiB: number };
      const image = join(dir, backend.path);
      expect(existsSync(image)).toBe(true);
      const st = statSync(image);
      expect(st.size).toBe(backend.sizeMiB * 2 ** 20);
      expect(st.blocks * 512).toBeLessThan(st.size);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
