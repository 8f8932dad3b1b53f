// `muxvisor exec`: unmodified programs under the trap shim, with a private supervisor
// (one ATA disk: the built-in model) or as a guest of a running one; the program's exit
// status comes back.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { Supervisor } from '../src/supervisor.ts';
import { TRAP_BUILD_DIR } from '../src/trap/user.ts';
import { buildTrap } from './helpers/trap-build.ts';
import { missing, titled } from './helpers/requires.ts';

const CLI = fileURLToPath(new URL('../src/bin/muxvisor.mjs', import.meta.url));

/** Resolves with the output so far once it matches `pattern`. */
function outputMatching(stream: NodeJS.ReadableStream, pattern: RegExp): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    stream.setEncoding('utf8');
    stream.on('data', (s: string) => {
      out += s;
      if (pattern.test(out)) resolve(out);
    });
  });
}

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

  it.skipIf(missing('lspci') !== null)(titled('runs lspci against a private supervisor: the PIIX IDE function shows, and only on stdout', missing('lspci')), async () => {
    const r = await cli(['exec', '--', 'lspci', '-A', 'intel-conf1', '-nn']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/IDE interface \[0101\]: .*\[8086:7010\]/);
    // The granted function and nothing else: no host bridge, no other guest's device.
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
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

  it('three drivers share one disk of `muxvisor run`; one SIGKILLed mid-transfer, the other two verify', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'muxvisor-exec-run-'));
    const socket = join(dir, 'sock');
    // Guests that connect by themselves (exec --socket): `muxvisor run` opens them to the uid their `auth` names.
    const guests = ['g1', 'g2', 'g3'].map((name, i) => ({ name, auth: { uid: process.getuid!() }, grants: [{ device: 'disk', window: { startLba: 1 + i * 2048, sectors: 2048 } }] }));
    const config = { socket, devices: [{ id: 'disk', kind: 'ata', backend: { type: 'file', path: join(dir, 'disk.img'), sizeMiB: 4, create: true } }], guests };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const run = spawn(process.execPath, [CLI, '--json', '--log-level', 'warn', 'run', join(dir, 'config.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const runOut = outputMatching(run.stdout!, /"event":"stopped".*\n/);
      await outputMatching(run.stdout!, /"event":"listening"/);
      const victim = spawn(process.execPath, [CLI, 'exec', '--socket', socket, '--guest', 'g2', '--', `${TRAP_BUILD_DIR}/ata-pio`, '--pause-mid-write'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const victimExit = new Promise<number | null>((r) => victim.once('exit', (code) => r(code)));
      const paused = await outputMatching(victim.stdout!, /paused mid-transfer at LBA \d+ \(pid (\d+)\)/);
      const others = ['g1', 'g3'].map((g, i) => cli(['exec', '--socket', socket, '--guest', g, '--', `${TRAP_BUILD_DIR}/ata-pio`, '--sectors', '32', '--seed', String(i + 1)]));
      await new Promise((r) => setTimeout(r, 1500)); // both are started and stalled behind g2
      process.kill(Number(/\(pid (\d+)\)/.exec(paused)![1]), 'SIGKILL'); // the driver, not its exec
      expect(await victimExit).toBe(128 + 9);
      for (const r of await Promise.all(others)) {
        expect(r.stdout).toMatch(/2048 sectors; wrote and read 32 sectors .*: verified/);
        expect(r.code).toBe(0);
      }
      run.kill('SIGINT');
      const stopped = JSON.parse((await runOut).trim().split('\n').pop()!) as { stats: { devices: { resets: number; unsafeSwitches: number; perGuest: { guest: string; faulted: boolean }[] }[] } };
      const disk = stopped.stats.devices[0];
      expect(disk.resets).toBeGreaterThanOrEqual(1);
      expect(disk.unsafeSwitches).toBe(0);
      expect(Object.fromEntries(disk.perGuest.map((g) => [g.guest, g.faulted]))).toEqual({ g1: false, g2: true, g3: false });
    } finally {
      if (run.exitCode === null) run.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
