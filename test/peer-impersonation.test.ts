// Hole 5, as the hostile guest found it: a guest's name was not tied to its process. A raw
// client that said hello with an honest guest's name between two of the honest guest's runs
// was welcomed as it and read its disk window; the honest guest's next run was then refused
// as a duplicate. And a guest `muxvisor run` starts could be taken by whoever said its name
// first. Here the honest guest proves itself (the token of its auth.tokenFile; the one-time
// token `run` hands the process it starts), the impostor, with nothing to show, is refused,
// takes no name, learns no configured name, and the honest guest goes on.
//
// Raw frames, PeerClient and the CLI only, so this file runs unchanged against the code
// before the fix (where the schema has no `auth`, it is left out): there the impostor reads
// the secret and the honest guest is locked out.

import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.ts';
import { GuestSchema } from '../src/config/schema.ts';
import { Supervisor } from '../src/supervisor.ts';
import { muxRouterFactory } from '../src/mux/router-factory.ts';
import { PeerClient } from '../src/channel/peer-client.ts';
import { AtaDriver } from '../src/guests/ata-driver.ts';
import { TRAP_BUILD_DIR } from '../src/trap/user.ts';
import { RawPeer } from './helpers/raw-peer.ts';
import { buildTrap } from './helpers/trap-build.ts';

const CLI = join(import.meta.dirname, '..', 'src', 'bin', 'muxvisor.mjs');
const hasAuth = 'auth' in GuestSchema.shape;
const NAMES = ['honest', 'other'];

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'mv-impostor-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Reads LBA 0 of the window of whoever `client` is; null when the hello was refused. */
async function readSector0(sock: string, guest: string, token?: string): Promise<{ data: Uint8Array | null; err: string | null }> {
  let client: PeerClient;
  try {
    client = await PeerClient.connect(sock, { guest, ...(token ? { token } : {}) } as never);
  } catch (e) {
    return { data: null, err: (e as Error).message };
  }
  cleanups.push(() => client.destroy());
  return { data: await new AtaDriver(client).readPio(0, 1), err: null };
}

describe('a guest name taken by a peer that is not the guest (hole 5)', () => {
  it("a raw client saying an honest guest's name between two of its runs is refused, reads nothing, and does not lock the guest out", async () => {
    const dir = tmp();
    const sock = join(dir, 'mv.sock');
    const token = randomBytes(24).toString('hex');
    const tokenFile = join(dir, 'honest.token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const guest = (name: string, startLba: number) => ({
      name,
      ...(hasAuth ? { auth: { tokenFile } } : {}),
      grants: [{ device: 'disk0', window: { startLba, sectors: 512 } }],
    });
    const config = parseConfig({
      socket: sock,
      devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'memory', sizeMiB: 1 }, map: { cmd: '0x1f0', ctl: '0x3f6' } }],
      guests: [guest('honest', 0), guest('other', 512)],
    });
    // As `muxvisor run` builds it: a MUX on the disk, no default credential.
    const sup = new Supervisor({ config, createRouter: await muxRouterFactory(config), defaultAuth: null } as never);
    await sup.listen();
    cleanups.push(() => sup.close());

    // The honest guest's first run leaves a secret in its window.
    const secret = randomBytes(512);
    const first = await PeerClient.connect(sock, { guest: 'honest', token } as never);
    await new AtaDriver(first).writePio(0, secret);
    await first.bye();
    while (sup.stats().guests.find((g) => g.guest === 'honest')!.connected) await new Promise((r) => setTimeout(r, 2));

    // The impostor, with no token and with a wrong one, says the honest guest's name and
    // reads its window; then it says the name again and stays, holding the name.
    const stolen = await readSector0(sock, 'honest');
    const wrong = await readSector0(sock, 'honest', `${token}x`);
    const raw = await RawPeer.connect(sock);
    cleanups.push(() => raw.close());
    const reply = await raw.hello({ guest: 'honest', caps: ['pio', 'irq'] });
    // The honest guest's next run.
    const again = await readSector0(sock, 'honest', token);

    expect(stolen.data && Buffer.from(stolen.data).equals(secret), 'the impostor read the secret').toBeFalsy();
    expect([stolen.data, wrong.data]).toEqual([null, null]);
    expect(reply).toMatchObject({ t: 'err', code: 'unknown-guest' });
    // Its refusals name no configured guest (not even the one it asked for).
    for (const msg of [stolen.err!, wrong.err!, String(reply?.msg)]) for (const n of NAMES) expect(msg).not.toContain(n);
    // Welcomed, and its data is there.
    expect(again.err).toBeNull();
    expect(Buffer.from(again.data!).equals(secret)).toBe(true);
  });

  it('a guest `muxvisor run` starts is only the process it started: a raw client saying its name first is refused, the program runs', async () => {
    await buildTrap();
    const dir = tmp();
    const sock = join(dir, 'mv.sock');
    // The program waits a moment before it reaches for hardware: the impostor is first.
    const config = {
      socket: sock,
      devices: [{ id: 'scr', kind: 'scratch', map: { regs: '0x300' } }],
      guests: [{ name: 'drv', run: { type: 'user', argv: ['sh', '-c', `sleep 1; exec ${TRAP_BUILD_DIR}/test-scratch`] }, grants: [{ device: 'scr' }] }],
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const run = spawn(process.execPath, [CLI, '--json', '--log-level', 'error', 'run', join(dir, 'config.json'), '--exit-when-done'], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(() => run.exitCode === null && run.kill('SIGKILL'));
    let out = '';
    run.stdout!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => run.once('exit', (c) => r(c)));
    while (!out.includes('"event":"listening"')) {
      if (run.exitCode !== null) throw new Error(`muxvisor run exited: ${out}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const raw = await RawPeer.connect(sock);
    cleanups.push(() => raw.close());
    const reply = await raw.hello({ guest: 'drv', caps: ['pio', 'irq'] });
    expect(reply).toMatchObject({ t: 'err', code: 'unknown-guest' });
    expect(String(reply?.msg)).not.toContain('drv');
    expect(await exited).toBe(0);
    const guestEvent = out.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.event === 'guest');
    expect(guestEvent).toMatchObject({ guest: 'drv', how: 'user', ok: true });
  });
});
