// Hole 5, closed: a socket peer takes a guest's name only with the credential that guest
// accepts (src/channel/peer-auth.ts, README "Guests and their credentials"): the one-time
// token of the process the supervisor started, the uid or token file of its `auth`, or, for
// a guest with neither `auth` nor `run`, the supervisor's default (its own uid; none under
// `muxvisor run`). Each way in is tried with the wrong credential too: a wrong, reused,
// revoked or another guest's token, another uid (a peer run as nobody), none at all, TCP.
// Every refusal is the same for an unknown name and a known one, names no guest, takes no
// name, and is counted; the log says why. A fast-check model run mixes an honest guest's
// comings and goings with impostors' hellos.

import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import { pino } from 'pino';
import { ConfigError, parseConfig } from '../src/config/load.ts';
import type { ConfigInput } from '../src/config/schema.ts';
import { Supervisor, type SupervisorOptions } from '../src/supervisor.ts';
import { PeerClient } from '../src/channel/peer-client.ts';
import { SCRATCH_MAGIC, SCR_ID } from '../src/devices/scratch.ts';
import { RawPeer } from './helpers/raw-peer.ts';
import { missing, titled } from './helpers/requires.ts';

const noRoot = missing('root');
const NOBODY = 65534;
const ME = process.getuid!();

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'mv-auth-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A token file of `dir` holding a new random token (mode 0600); [path, token]. */
function tokenFile(dir: string, name: string, mode = 0o600): [string, string] {
  const token = randomBytes(24).toString('base64url');
  const p = join(dir, `${name}.token`);
  writeFileSync(p, `${token}\n`);
  chmodSync(p, mode);
  return [p, token];
}

type GuestIn = NonNullable<ConfigInput['guests']>[number];

interface Rig {
  sup: Supervisor;
  sock: string;
  names: string[];
  log: Array<Record<string, unknown>>;
  tcp: number;
}

/** A supervisor with a scratch device every guest reaches; its socket open to every user (the uid is what is checked). */
async function rig(guests: Array<Partial<GuestIn> & { name: string }>, opts: Partial<SupervisorOptions> = {}): Promise<Rig> {
  const dir = tmp();
  chmodSync(dir, 0o711);
  const sock = join(dir, 'mv.sock');
  const config = parseConfig({
    socket: sock,
    devices: [{ id: 'scr', kind: 'scratch', map: { regs: '0x300' } }],
    guests: guests.map((g) => ({ grants: [{ device: 'scr', shared: true }], ...g })),
  });
  const log: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void log.push(JSON.parse(l)) });
  const sup = new Supervisor({ config, logger, ...opts });
  await sup.listen();
  cleanups.push(() => sup.close());
  chmodSync(sock, 0o666);
  const tcp = ((await sup.listen({ host: '127.0.0.1', port: 0 })) as import('node:net').AddressInfo).port;
  return { sup, sock, names: guests.map((g) => g.name), log, tcp };
}

/** A hello from this process (uid ME); the first answer, the connection closed after. */
async function hello(where: string | { port: number }, guest: string, token?: string): Promise<Record<string, unknown> | null> {
  const p = await RawPeer.connect(where);
  try {
    return await p.hello({ guest, caps: ['pio'], ...(token !== undefined ? { token } : {}) });
  } finally {
    await p.close();
  }
}

// A peer run as another user: plain node, no project code (nobody may read none of it).
const FOREIGN_PEER = `
const net = require('net');
const [sock, b64] = process.argv.slice(1);
const payload = Buffer.from(b64, 'base64');
const s = net.connect(sock, () => { const h = Buffer.alloc(4); h.writeUInt32LE(payload.length); s.write(Buffer.concat([h, payload])); });
let buf = Buffer.alloc(0);
s.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) { process.stdout.write(buf.subarray(4, 4 + buf.readUInt32LE(0)).toString('base64')); s.destroy(); }
});
s.on('error', (e) => process.stdout.write('ERROR ' + e.code));`;

/** A hello from a process running as `uid`: the first answer. */
function helloAs(uid: number, sock: string, guest: string, token?: string): Promise<Record<string, unknown>> {
  const b64 = Buffer.from(pack({ t: 'hello', v: 1, guest, caps: ['pio'], ...(token ? { token } : {}) })).toString('base64');
  const child = spawn(process.execPath, ['-e', FOREIGN_PEER, sock, b64], { uid, gid: uid, cwd: '/', env: { PATH: process.env.PATH ?? '/usr/bin' }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve, reject) =>
    child.once('close', () => (out.startsWith('ERROR') || out === '' ? reject(new Error(`peer as uid ${uid}: ${out || 'no answer'}`)) : resolve(unpack(Buffer.from(out, 'base64')) as Record<string, unknown>))),
  );
}

/** Refused as an unknown name would be, naming no guest of the config; returns the message. */
function expectRefused(r: Record<string, unknown> | null, names: string[]): string {
  expect(r).toMatchObject({ t: 'err', code: 'unknown-guest' });
  const msg = String(r!.msg);
  expect(msg).toMatch(/^no guest of that name accepts this peer \(/);
  for (const n of names) expect(msg).not.toContain(n);
  return msg;
}

function refusals(r: Rig): string[] {
  return r.log.filter((l) => String(l.msg).startsWith('hello refused: ')).map((l) => String(l.msg).slice('hello refused: '.length));
}

describe('one-time tokens of the processes the supervisor starts', () => {
  it('open their guest once; a reused, revoked, wrong or other guest\'s token opens nothing', async () => {
    const r = await rig([{ name: 'drv', run: { type: 'user', argv: ['true'] } }, { name: 'other', run: { type: 'user', argv: ['true'] } }]);
    const t = r.sup.issueToken('drv');
    const p = await RawPeer.connect(r.sock);
    expect(await p.hello({ guest: 'drv', caps: ['pio'], token: t })).toMatchObject({ t: 'welcome', guest: 'drv' });
    await p.close();
    while (r.sup.stats().guests[0].connected) await new Promise((res) => setTimeout(res, 2));
    expectRefused(await hello(r.sock, 'drv', t), r.names); // used up
    expectRefused(await hello(r.sock, 'drv'), r.names); // none: a guest with `run` is only its process
    expectRefused(await hello(r.sock, 'drv', randomBytes(32).toString('base64url')), r.names);
    expectRefused(await hello(r.sock, 'other', r.sup.issueToken('drv')), r.names); // another guest's
    const revoked = r.sup.issueToken('drv');
    r.sup.revokeToken('drv', revoked); // its process ended before connecting
    expectRefused(await hello(r.sock, 'drv', revoked), r.names);
    expect(r.sup.stats().channel.authRefused).toBe(5);
    expect(refusals(r)).toEqual([
      'the supervisor starts this guest itself ("run"): only that process, with its one-time token, may be it',
      'the supervisor starts this guest itself ("run"): only that process, with its one-time token, may be it',
      'the supervisor starts this guest itself ("run"): only that process, with its one-time token, may be it',
      'the supervisor starts this guest itself ("run"): only that process, with its one-time token, may be it',
      'the supervisor starts this guest itself ("run"): only that process, with its one-time token, may be it',
    ]);
    // No token reaches the log.
    for (const l of r.log) expect(JSON.stringify(l)).not.toContain(t);
  });

  it('an unknown name and a known one without its credential get the same refusal', async () => {
    const r = await rig([{ name: 'drv', run: { type: 'user', argv: ['true'] } }]);
    const unknown = expectRefused(await hello(r.sock, 'nosuch'), r.names);
    const known = expectRefused(await hello(r.sock, 'drv'), r.names);
    expect(unknown).toBe(known);
    expect(refusals(r)[0]).toBe('no guest of this name in the configuration');
  });
});

describe('a guest\'s auth: uid and token file', () => {
  it.skipIf(noRoot !== null)(titled('auth.uid: the peer\'s uid by SO_PEERCRED must be one named', noRoot), async () => {
    const r = await rig([{ name: 'forNobody', auth: { uid: NOBODY } }, { name: 'forMe', auth: { uid: [1234, ME] } }]);
    expect(await helloAs(NOBODY, r.sock, 'forNobody')).toMatchObject({ t: 'welcome', guest: 'forNobody' });
    expectRefused(await helloAs(NOBODY, r.sock, 'forMe'), r.names);
    expectRefused(await hello(r.sock, 'forNobody'), r.names);
    expect(await hello(r.sock, 'forMe')).toMatchObject({ t: 'welcome' });
    expect(refusals(r)).toEqual([`its "auth": needs uid 1234 or ${ME}, and the peer runs as uid ${NOBODY}`, `its "auth": needs uid ${NOBODY}, and the peer runs as uid ${ME}`]);
  });

  it('auth.tokenFile: the token of the file opens the guest, again and again; another does not; over TCP only a token can', async () => {
    const dir = tmp();
    const [fileA, tokenA] = tokenFile(dir, 'a');
    const [fileB, tokenB] = tokenFile(dir, 'b');
    const r = await rig([{ name: 'alpha', auth: { tokenFile: fileA } }, { name: 'bravo', auth: { tokenFile: fileB } }, { name: 'uidguest', auth: { uid: ME } }]);
    for (let i = 0; i < 2; i++) expect(await hello(r.sock, 'alpha', tokenA)).toMatchObject({ t: 'welcome' });
    expect(await hello(r.sock, 'alpha', ` ${tokenA}\n`)).toMatchObject({ t: 'welcome' }); // as the file is read: trimmed
    expectRefused(await hello(r.sock, 'alpha', tokenB), r.names);
    expectRefused(await hello(r.sock, 'alpha'), r.names);
    expectRefused(await hello(r.sock, 'alpha', tokenA.slice(0, -1)), r.names);
    expect(await hello({ port: r.tcp }, 'bravo', tokenB)).toMatchObject({ t: 'welcome' });
    const overTcp = expectRefused(await hello({ port: r.tcp }, 'uidguest'), r.names);
    expect(overTcp).toContain('a peer whose uid cannot be told');
    expect(refusals(r)).toEqual([
      'its "auth": needs the token of its tokenFile, and the hello carries another',
      'its "auth": needs the token of its tokenFile, and the hello carries none',
      'its "auth": needs the token of its tokenFile, and the hello carries another',
      `its "auth": needs uid ${ME}, and the peer's uid cannot be told (a TCP peer has no credentials the kernel can tell)`,
    ]);
  });

  it.skipIf(noRoot !== null)(titled('uid and tokenFile together: both must hold', noRoot), async () => {
    const [file, token] = tokenFile(tmp(), 'both', 0o644 & ~0o004); // 0640: the group may read it
    const r = await rig([{ name: 'bothguest', auth: { uid: NOBODY, tokenFile: file } }]);
    expectRefused(await hello(r.sock, 'bothguest', token), r.names); // the token, not the uid
    expectRefused(await helloAs(NOBODY, r.sock, 'bothguest'), r.names); // the uid, not the token
    expect(await helloAs(NOBODY, r.sock, 'bothguest', token)).toMatchObject({ t: 'welcome' });
  });

  it('a token file others may read, others may write, too short, or missing stops the supervisor at start, naming the guest\'s field', async () => {
    const dir = tmp();
    const cases: Array<[string, RegExp]> = [
      [tokenFile(dir, 'world', 0o604)[0], /readable by other users \(mode 604\): chmod o-r/],
      [tokenFile(dir, 'groupw', 0o620)[0], /writable by group or others \(mode 620\): chmod go-w/],
      [join(dir, 'none'), /no such file/],
    ];
    writeFileSync(join(dir, 'short'), 'abc\n', { mode: 0o600 });
    cases.push([join(dir, 'short'), /holds 3 characters, at least 16 are needed/]);
    for (const [file, why] of cases) {
      const config = parseConfig({ guests: [{ name: 'ok' }, { name: 'g', auth: { tokenFile: file } }] });
      const sup = new Supervisor({ config, configSource: 'c.json' });
      const err = await sup.start().then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues).toEqual([{ path: 'guests[1].auth.tokenFile', message: expect.stringMatching(why) }]);
      await sup.close();
    }
    expect(() => parseConfig({ guests: [{ name: 'g', auth: {} }] })).toThrow(/guests\[0\]\.auth: expected "uid", "tokenFile" or both/);
    expect(() => parseConfig({ guests: [{ name: 'g', auth: { uid: -1 } }] })).toThrow(/guests\[0\]\.auth\.uid/);
  });
});

describe('guests with neither auth nor run', () => {
  it.skipIf(noRoot !== null)(titled('by default, a peer of the supervisor\'s own uid; nobody else', noRoot), async () => {
    const r = await rig([{ name: 'free' }]);
    expect(await hello(r.sock, 'free')).toMatchObject({ t: 'welcome' });
    expectRefused(await helloAs(NOBODY, r.sock, 'free'), r.names);
    expect(refusals(r)).toEqual([`the supervisor's default for guests without "auth": needs uid ${ME}, and the peer runs as uid ${NOBODY}`]);
  });

  it('under `muxvisor run` (defaultAuth null), nobody: the config must name a credential', async () => {
    const r = await rig([{ name: 'free' }], { defaultAuth: null });
    expectRefused(await hello(r.sock, 'free'), r.names);
    expect(refusals(r)).toEqual(['the guest names no "auth" and the supervisor does not start it: nobody may be it (add "auth": {"uid": ...} or {"tokenFile": ...})']);
  });
});

describe('a name held by an authenticated guest', () => {
  it('an impostor gets the refusal of an unknown name, not "duplicate", and the guest goes on; the guest itself again gets "duplicate"', async () => {
    const [file, token] = tokenFile(tmp(), 'h');
    const r = await rig([{ name: 'honest', auth: { tokenFile: file } }]);
    const honest = await PeerClient.connect(r.sock, { guest: 'honest', token });
    cleanups.push(() => honest.destroy());
    expectRefused(await hello(r.sock, 'honest'), r.names);
    expectRefused(await hello(r.sock, 'honest', 'not-the-token-at-all'), r.names);
    expect(await hello(r.sock, 'honest', token)).toMatchObject({ t: 'err', code: 'duplicate-guest' });
    expect(await honest.access({ space: 'pio', addr: 0x300 + SCR_ID, size: 4, dir: 'read' })).toEqual({ value: SCRATCH_MAGIC });
  });
});

describe('an honest guest and impostors, at random (fast-check model)', () => {
  it('only credentialed hellos are welcomed; the honest guest always gets its free name', async () => {
    const dir = tmp();
    const [fileH, tokenH] = tokenFile(dir, 'h');
    const [fileO, tokenO] = tokenFile(dir, 'o');
    const r = await rig([{ name: 'honest', auth: { tokenFile: fileH } }, { name: 'other', auth: { tokenFile: fileO } }, { name: 'started', run: { type: 'user', argv: ['true'] } }]);
    interface Model { connected: boolean }
    interface Real { honest: PeerClient | null; used: string[] }
    const connected = () => r.sup.stats().guests.find((g) => g.guest === 'honest')!.connected;
    const settle = async (want: boolean) => {
      while (connected() !== want) await new Promise((res) => setTimeout(res, 2));
    };
    class Connect implements fc.AsyncCommand<Model, Real> {
      check = () => true;
      async run(m: Model, s: Real) {
        if (m.connected) {
          expect(await hello(r.sock, 'honest', tokenH)).toMatchObject({ t: 'err', code: 'duplicate-guest' });
          return;
        }
        s.honest = await PeerClient.connect(r.sock, { guest: 'honest', token: tokenH });
        m.connected = true;
      }
      toString = () => 'honest connects';
    }
    class Leave implements fc.AsyncCommand<Model, Real> {
      check = (m: Readonly<Model>) => m.connected;
      async run(m: Model, s: Real) {
        await s.honest!.bye();
        s.honest = null;
        m.connected = false;
        await settle(false);
      }
      toString = () => 'honest leaves';
    }
    class Started implements fc.AsyncCommand<Model, Real> {
      check = () => true;
      async run(_m: Model, s: Real) {
        const t = r.sup.issueToken('started');
        expect(await hello(r.sock, 'started', t)).toMatchObject({ t: 'welcome' });
        s.used.push(t);
        while (r.sup.stats().guests.find((g) => g.guest === 'started')!.connected) await new Promise((res) => setTimeout(res, 2));
      }
      toString = () => 'a started process connects once';
    }
    type Kind = 'none' | 'random' | 'used' | 'other' | 'empty';
    class Impostor implements fc.AsyncCommand<Model, Real> {
      constructor(readonly name: 'honest' | 'started' | 'nosuch', readonly kind: Kind) {}
      check = () => true;
      async run(m: Model, s: Real) {
        const token = { none: undefined, random: randomBytes(16).toString('hex'), used: s.used.at(-1), other: tokenO, empty: '' }[this.kind];
        expectRefused(await hello(r.sock, this.name, token), r.names);
        expect(connected()).toBe(m.connected);
        if (s.honest) expect(await s.honest.access({ space: 'pio', addr: 0x300 + SCR_ID, size: 4, dir: 'read' })).toEqual({ value: SCRATCH_MAGIC });
      }
      toString = () => `impostor says ${this.name} with token ${this.kind}`;
    }
    await fc.assert(
      fc.asyncProperty(
        fc.commands(
          [
            fc.constant(new Connect()),
            fc.constant(new Leave()),
            fc.constant(new Started()),
            fc.tuple(fc.constantFrom('honest' as const, 'started' as const, 'nosuch' as const), fc.constantFrom<Kind>('none', 'random', 'used', 'other', 'empty')).map(([n, k]) => new Impostor(n, k)),
          ],
          { maxCommands: 12 },
        ),
        async (cmds) => {
          const real: Real = { honest: null, used: [] };
          await fc.asyncModelRun(() => ({ model: { connected: false }, real }), cmds);
          if (real.honest) {
            await real.honest.bye();
            await settle(false);
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});
