// The token of a process muxvisor starts (run: user, exec) opens its guest for that process
// and its descendants while it runs (a script that runs a driver several times, a forked
// child), and for no other process; a token whose process is not known is used up once.

import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { GuestAuth, descendsFrom } from '../src/channel/peer-auth.ts';

const children: { kill(): boolean }[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill();
});

/** A shell that starts a sleeping grandchild: [shell pid, grandchild pid]. */
async function tree(): Promise<[number, number]> {
  const sh = spawn('/bin/sh', ['-c', 'sleep 30 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(sh);
  const grand = await new Promise<number>((res) => sh.stdout!.once('data', (d: Buffer) => res(Number(String(d).trim()))));
  children.push({ kill: () => (process.kill(grand), true) });
  return [sh.pid!, grand];
}

const peer = (pid: number) => ({ pid, uid: process.getuid!(), gid: process.getgid!() });

describe('descendsFrom', () => {
  it('follows the parents in /proc', async () => {
    const [sh, grand] = await tree();
    expect(descendsFrom(process.pid, process.pid)).toBe(true);
    expect(descendsFrom(sh, process.pid)).toBe(true);
    expect(descendsFrom(grand, sh)).toBe(true);
    expect(descendsFrom(grand, process.pid)).toBe(true);
    expect(descendsFrom(process.pid, sh)).toBe(false);
    expect(descendsFrom(1, process.pid)).toBe(false);
    expect(descendsFrom(2 ** 22 + 7, process.pid)).toBe(false); // no such process
  });
});

describe('a token bound to the process it was handed to', () => {
  const auth = (): GuestAuth => new GuestAuth(new Map([['g', { started: true }], ['h', { started: true }]]), null);

  it('opens the guest for that process and its descendants, again and again, until revoked', async () => {
    const a = auth();
    const [sh, grand] = await tree();
    const token = a.issue('g');
    a.bind('g', token, sh);
    for (const pid of [sh, grand, sh]) {
      const v = a.check('g', token, peer(pid));
      expect(v.ok, `pid ${pid}`).toBe(true);
      expect(a.consume('g', v)).toBe(true);
    }
    a.revoke('g', token);
    expect(a.check('g', token, peer(grand)).ok).toBe(false);
  });

  it('opens nothing for a process outside its tree, nor another guest', async () => {
    const a = auth();
    const [sh] = await tree();
    const token = a.issue('g');
    a.bind('g', token, sh);
    const v = a.check('g', token, peer(process.pid)); // the parent: not started with it
    expect(v).toMatchObject({ ok: false, why: expect.stringContaining('not that process or a descendant') });
    expect(a.check('g', token, { unknown: 'TCP' }).ok).toBe(false);
    expect(a.check('h', token, peer(sh)).ok).toBe(false);
  });

  it('an unbound token (its process unknown) is used up by the first hello', () => {
    const a = auth();
    const token = a.issue('g');
    const v = a.check('g', token, peer(process.pid));
    expect(v.ok).toBe(true);
    expect(a.consume('g', v)).toBe(true);
    expect(a.check('g', token, peer(process.pid)).ok).toBe(false);
  });
});
