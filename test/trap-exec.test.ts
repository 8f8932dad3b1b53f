// `muxvisor exec`: unmodified programs under the trap shim, with a private supervisor
// (one ATA disk: the built-in model) or as a guest of a running one; the program's exit
// status comes back.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { Supervisor } from '../src/supervisor.ts';
import { TRAP_BUILD_DIR } from '../src/trap/user.ts';
import { buildTrap } from './helpers/trap-build.ts';

const CLI = fileURLToPath(new URL('../src/bin/muxvisor.mjs', import.meta.url));

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 50_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('muxvisor exec', () => {
  beforeAll(() => buildTrap());

  it('runs lspci against a private supervisor: the PIIX IDE function shows, and only on stdout', async () => {
    const r = await cli(['exec', '--', 'lspci', '-A', 'intel-conf1', '-nn']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/IDE interface \[0101\]: .*\[8086:7010\]/);
  });

  it('runs the C ATA drivers (PIO and bus-master DMA) against the private disk', async () => {
    const pio = await cli(['exec', '--', `${TRAP_BUILD_DIR}/ata-pio`, '--sectors', '16']);
    expect(pio.stdout).toMatch(/wrote and read 16 sectors .*: verified/);
    expect(pio.code).toBe(0);
    const dma = await cli(['exec', '--size-mib', '2', '--', `${TRAP_BUILD_DIR}/ata-dma`, '--sectors', '16']);
    expect(dma.stdout).toMatch(/4096 sectors; DMA wrote and read 16 sectors .*: verified/);
    expect(dma.code).toBe(0);
  });

  it("returns the program's exit status, and 128+signal when it is killed", async () => {
    expect((await cli(['exec', '--', 'sh', '-c', 'exit 3'])).code).toBe(3);
    expect((await cli(['exec', '--', 'sh', '-c', 'kill -USR1 $$'])).code).toBe(128 + 10);
  });

  it('joins a running supervisor with --socket/--guest and drives its disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'muxvisor-exec-test-'));
    const image = join(dir, 'disk.img');
    writeFileSync(image, Buffer.alloc(1 << 20));
    const socket = join(dir, 'sock');
    const sup = new Supervisor({
      config: parseConfig({ socket, devices: [{ id: 'ide', kind: 'ata', backend: { type: 'file', path: image } }], guests: [{ name: 'drv', grants: [{ device: 'ide' }] }] }),
    });
    try {
      await sup.listen();
      const r = await cli(['exec', '--socket', socket, '--guest', 'drv', '--', `${TRAP_BUILD_DIR}/ata-pio`, '--sectors', '16']);
      expect(r.stdout).toMatch(/2048 sectors; wrote and read 16 sectors .*: verified/);
      expect(r.code).toBe(0);
      expect(sup.stats().guests.find((g) => g.guest === 'drv')?.accesses).toBeGreaterThan(16 * 5);
    } finally {
      await sup.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
