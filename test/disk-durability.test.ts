// Nothing lost: a guest on a real `muxvisor run` process writes through the ATA MUX to a raw
// image file and gets FLUSH CACHE acknowledged; the supervisor is SIGKILLed right after the
// acknowledgement; every flushed sector is in the image file.
//
// What the SIGKILL test cannot see: killing the supervisor keeps the kernel's page cache, so
// the sectors are in the file whether or not fdatasync ran. Only a power cut would tell. The
// fdatasync-before-acknowledgement rule is covered by test/backend-file.test.ts with an
// injected sync (calls counted, failures sticky), and below by watching the real syscall:
// strace attached to the supervisor delays fdatasync's return on the image by DELAY_MS, so
// a FLUSH acknowledged before the sync returned would arrive at least that much too early.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { PeerClient } from '../src/channel/peer-client.ts';
import { AtaDriver } from '../src/guests/ata-driver.ts';
import { stampSector } from '../src/guests/ata-workload.ts';
import { missing, titled } from './helpers/requires.ts';

const CLI = join(import.meta.dirname, '..', 'src', 'bin', 'muxvisor.mjs');
const WINDOW_START = 2048;
const RUNS = [
  { lba: 0, count: 8 },
  { lba: 100, count: 37 },
  { lba: 4000, count: 1 },
  { lba: 8191 - 15, count: 16 },
];
let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

// No deadline of its own: on a loaded machine the CLI or strace may take many seconds to
// start (each condition also holds once the process has exited); the test's timeout bounds it.
async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 50));
}

interface Rig {
  sup: ChildProcess;
  image: string;
  socket: string;
  stderr: () => string;
  exited: Promise<NodeJS.Signals | null>;
  /** Listening, or exited. */
  ready: () => boolean;
}

function startSupervisor(): Rig {
  dir = mkdtempSync(join(tmpdir(), 'mv-durable-'));
  const image = join(dir, 'disk.img');
  writeFileSync(image, Buffer.alloc(8 << 20));
  const socket = join(dir, 'mv.sock');
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      socket,
      // No watchdog to speak of: FLUSH waits for fdatasync (delayed further under strace), and a
      // loaded machine must not make it look like a hung guest (over 0.5 s of the 2 s seen).
      devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'file', path: image }, properties: { deadlineNs: 60e9 } }],
      guests: [{ name: 'g1', auth: { uid: process.getuid!() }, grants: [{ device: 'disk0', window: { startLba: WINDOW_START, sectors: 8192 } }] }],
    }),
  );
  const sup = spawn(process.execPath, [CLI, '--json', '--log-level', 'warn', 'run', join(dir, 'config.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  sup.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  sup.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((r) => sup.once('exit', (_c, sig) => r(sig)));
  // Its `listening` event, not the socket file: the file is there from bind(), before listen()
  // (a connect in between is refused).
  const ready = () => stdout.includes('"event":"listening"') || sup.exitCode !== null;
  return { sup, image, socket, stderr: () => stderr, exited, ready };
}

/** Writes RUNS with write cache on and FLUSH; returns when the flush is acknowledged. */
async function writeAndFlush(rig: Rig): Promise<PeerClient> {
  await waitFor(rig.ready);
  expect(rig.sup.exitCode, rig.stderr()).toBeNull();
  const client = await PeerClient.connect(rig.socket, { guest: 'g1' });
  const driver = new AtaDriver(client);
  const id = await driver.identify();
  expect(id.sectors).toBe(8192); // the window, not the 8 MiB disk
  expect(id.writeCache).toBe(true); // the flush is what makes the writes durable
  for (const [i, r] of RUNS.entries()) {
    const data = new Uint8Array(r.count * 512);
    for (let k = 0; k < r.count; k++) stampSector(data, k * 512, 0xd00d, r.lba + k, i + 1);
    await driver.writePio(r.lba, data);
  }
  await driver.flush(); // acknowledged: status ready, no ERR
  return client;
}

function expectFlushedSectors(image: string): void {
  const disk = readFileSync(image);
  const expected = new Uint8Array(512);
  for (const [i, r] of RUNS.entries()) {
    for (let k = 0; k < r.count; k++) {
      stampSector(expected, 0, 0xd00d, r.lba + k, i + 1);
      const at = (WINDOW_START + r.lba + k) * 512;
      expect(Buffer.from(disk.subarray(at, at + 512)).equals(Buffer.from(expected)), `guest LBA ${r.lba + k}`).toBe(true);
    }
  }
  // Nothing landed outside the guest's window.
  expect(disk.subarray(0, WINDOW_START * 512).every((b) => b === 0)).toBe(true);
}

it('every sector written before an acknowledged flush survives a SIGKILL of the supervisor', async () => {
  const rig = startSupervisor();
  try {
    const client = await writeAndFlush(rig);
    rig.sup.kill('SIGKILL');
    expect(await rig.exited).toBe('SIGKILL');
    expectFlushedSectors(rig.image);
    client.destroy();
  } finally {
    if (rig.sup.exitCode === null && rig.sup.signalCode === null) rig.sup.kill('SIGKILL');
  }
});

const DELAY_MS = 200;
const straceMissing = missing('strace');

it.skipIf(straceMissing !== null)(titled('the flush is acknowledged only after fdatasync on the image returned (strace)', straceMissing), async (ctx) => {
  const rig = startSupervisor();
  const log = join(dir, 'strace.log');
  let strace: ChildProcess | null = null;
  try {
    await waitFor(rig.ready);
    // -p with -ff attaches every thread (fdatasync runs on a libuv pool thread), one log file
    // per thread (no calls split by other threads' lines); -y names the file behind each fd;
    // the injected delay happens after the kernel's fdatasync is done.
    strace = spawn('strace', ['-ff', '-p', String(rig.sup.pid), '-y', '-ttt', '-T', '-e', 'trace=pwrite64,pwritev,pwritev2,write,fdatasync,fsync',
      '-e', `inject=fdatasync,fsync:delay_exit=${DELAY_MS * 1000}`, '-o', log], { stdio: ['ignore', 'ignore', 'pipe'] });
    let straceErr = '';
    strace.stderr!.on('data', (d: Buffer) => (straceErr += d.toString()));
    const straceDone = new Promise<void>((r) => strace!.once('exit', () => r()));
    await waitFor(() => /attached/.test(straceErr) || strace!.exitCode !== null);
    if (!/attached/.test(straceErr)) ctx.skip(`strace cannot attach here: ${straceErr.trim()}`);

    const client = await writeAndFlush(rig);
    const ackedAt = Date.now() / 1000;
    rig.sup.kill('SIGKILL');
    expect(await rig.exited).toBe('SIGKILL');
    await straceDone; // its tracee is gone: strace writes the rest of its log and exits
    client.destroy();
    expectFlushedSectors(rig.image);

    // "SECONDS.MICROS name(FD</path>, ...) = RESULT ... <DURATION>", one line per call.
    const onImage = readdirSync(dir)
      .filter((f) => f.startsWith('strace.log.'))
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
      .map((l) => /^(\d+\.\d+) (\w+)\(\d+<([^>]*)>.*\) = (-?\d+).*<(\d+\.\d+)>$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null && m[3] === rig.image)
      .map((m) => ({ at: Number(m[1]), call: m[2], result: Number(m[4]), took: Number(m[5]) }))
      .sort((a, b) => a.at - b.at);
    const writes = onImage.filter((c) => c.call.startsWith('pwrite') || c.call === 'write');
    const syncs = onImage.filter((c) => c.call === 'fdatasync' || c.call === 'fsync');
    expect(writes.length).toBeGreaterThanOrEqual(RUNS.length);
    const lastWriteDone = Math.max(...writes.map((c) => c.at + c.took));
    const barrier = syncs.find((c) => c.at >= lastWriteDone);
    expect(barrier, `no fdatasync after the last write in ${JSON.stringify(onImage)}`).toBeDefined();
    expect(barrier!.result).toBe(0);
    // The sync returned no earlier than its start plus the injected delay; the acknowledgement
    // came after that (1 ms: Date.now() has millisecond resolution).
    expect(ackedAt + 0.001).toBeGreaterThanOrEqual(barrier!.at + DELAY_MS / 1000);
  } finally {
    if (rig.sup.exitCode === null && rig.sup.signalCode === null) rig.sup.kill('SIGKILL');
    if (strace && strace.exitCode === null && strace.signalCode === null) strace.kill('SIGTERM');
  }
});
