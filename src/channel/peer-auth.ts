// Who may say hello as which guest (README "Guests and their credentials"). A socket peer
// takes a guest's name only when it proves it is that guest, by one of:
//   1. the token the supervisor handed the process it started for the guest (`muxvisor run`,
//      `muxvisor exec`: MUXVISOR_TOKEN). Bound to that process (bindToken): it opens the guest
//      for that process and its descendants (a driver run by a script, a forked child), one
//      connection at a time, until the process ends, and for no other process; a token whose
//      process is not known (a peer over TCP) is used up by the first hello it opens;
//   2. the credential the guest's `auth` names: `uid` (the peer's uid by SO_PEERCRED is
//      one of them), `tokenFile` (the hello's `token` equals the file's content); when both
//      are named, both must hold;
//   3. for a guest with neither `auth` nor `run`, the supervisor's default: by default a peer
//      of the supervisor's own uid; `muxvisor run` has none, so such a guest is refused.
// A guest with `run` and no `auth` is the process the supervisor started and nobody else.
// Tokens are compared as SHA-256 digests in constant time and never logged. A refusal tells
// the peer nothing about which names exist; the reason is for the log (peerRefusal).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { type PeerIdentity, isKnown } from './peer-cred.ts';

/** A credential: the peer's uid is one of `uids`; the hello's token hashes to `tokenDigest`. */
export interface AuthRule {
  uids?: readonly number[];
  tokenDigest?: Buffer;
}

export interface GuestAuthEntry {
  /** The guest's `auth`, its token file already read. */
  auth?: AuthRule;
  /** The config starts it (`run`): without `auth`, only its one-time token opens it. */
  started: boolean;
}

export type AuthVerdict = { ok: true; how: string; oneTime?: string } | { ok: false; why: string };

export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Shortest token a token file may hold (after trimming). */
export const MIN_TOKEN_LENGTH = 16;

export class GuestAuth {
  /** Unused one-time tokens per guest, as hex digests. */
  private readonly oneTime = new Map<string, Set<string>>();
  /** The process each bound token was handed to (hex digest -> pid). */
  private readonly boundTo = new Map<string, number>();

  constructor(
    private readonly guests: ReadonlyMap<string, GuestAuthEntry>,
    /** Rule 3; null: a guest with neither `auth` nor `run` is nobody's. */
    private readonly fallback: AuthRule | null,
  ) {}

  /** A new one-time token for the process about to be started as `guest`. */
  issue(guest: string): string {
    if (!this.guests.has(guest)) throw new Error(`no guest "${guest}" in the configuration`);
    const token = randomBytes(32).toString('base64url');
    let set = this.oneTime.get(guest);
    if (!set) this.oneTime.set(guest, (set = new Set()));
    set.add(tokenDigest(token).toString('hex'));
    return token;
  }

  /**
   * The process started with `token` is `pid`: the token then opens the guest only for a peer
   * that is that process or one of its descendants, and is not used up by a hello (revoke ends it).
   */
  bind(guest: string, token: string, pid: number): void {
    const d = tokenDigest(token).toString('hex');
    if (this.oneTime.get(guest)?.has(d) && Number.isInteger(pid) && pid > 0) this.boundTo.set(d, pid);
  }

  /** The process the token was for has ended: its token opens nothing any more. */
  revoke(guest: string, token: string): void {
    const d = tokenDigest(token).toString('hex');
    this.oneTime.get(guest)?.delete(d);
    this.boundTo.delete(d);
  }

  /** Whether a hello naming `guest` with `token` from `peer` may open it (nothing is used up). */
  check(guest: string, token: string | undefined, peer: PeerIdentity): AuthVerdict {
    const g = this.guests.get(guest);
    if (!g) return { ok: false, why: `no guest of this name in the configuration` };
    const digest = token !== undefined && token.trim() !== '' ? tokenDigest(token.trim()) : null;
    if (digest) {
      for (const d of this.oneTime.get(guest) ?? []) {
        if (!timingSafeEqual(Buffer.from(d, 'hex'), digest)) continue;
        const root = this.boundTo.get(d);
        if (root === undefined) return { ok: true, how: 'the one-time token of the process the supervisor started', oneTime: d };
        if (isKnown(peer) && descendsFrom(peer.pid, root)) return { ok: true, how: `the token of the process the supervisor started (pid ${root}), from ${peer.pid === root ? 'it' : `its descendant pid ${peer.pid}`}` };
        return { ok: false, why: `the token of the process the supervisor started (pid ${root}), from ${isKnown(peer) ? `pid ${peer.pid}, not that process or a descendant` : 'a peer whose pid cannot be told'}` };
      }
    }
    if (g.auth) {
      const why = mismatch(g.auth, digest, peer);
      return why === null ? { ok: true, how: 'the credential of its "auth"' } : { ok: false, why: `its "auth": ${why}` };
    }
    if (g.started) return { ok: false, why: 'the supervisor starts this guest itself ("run"): only that process, with its one-time token, may be it' };
    if (!this.fallback) return { ok: false, why: 'the guest names no "auth" and the supervisor does not start it: nobody may be it (add "auth": {"uid": ...} or {"tokenFile": ...})' };
    const why = mismatch(this.fallback, digest, peer);
    return why === null ? { ok: true, how: "the supervisor's default credential" } : { ok: false, why: `the supervisor's default for guests without "auth": ${why}` };
  }

  /** Uses up the one-time token of an accepted verdict; false when it was used meanwhile. */
  consume(guest: string, verdict: AuthVerdict): boolean {
    if (!verdict.ok || verdict.oneTime === undefined) return true;
    return this.oneTime.get(guest)?.delete(verdict.oneTime) ?? false;
  }
}

/** Whether process `pid` is `root` or descends from it (its parents, from /proc, up to init). */
export function descendsFrom(pid: number, root: number): boolean {
  let p = pid;
  for (let hops = 0; hops < 64 && p > 1; hops++) {
    if (p === root) return true;
    try {
      // The parent is the 2nd field after the command name, which may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return false;
    }
  }
  return p === root;
}

/** Why `peer` with a token of `digest` does not meet `rule`, or null when it does. */
function mismatch(rule: AuthRule, digest: Buffer | null, peer: PeerIdentity): string | null {
  if (rule.uids) {
    const want = `uid ${rule.uids.join(' or ')}`;
    if (!isKnown(peer)) return `needs ${want}, and the peer's uid cannot be told (${peer.unknown})`;
    if (!rule.uids.includes(peer.uid)) return `needs ${want}, and the peer runs as uid ${peer.uid}`;
  }
  if (rule.tokenDigest) {
    if (!digest) return 'needs the token of its tokenFile, and the hello carries none';
    if (!timingSafeEqual(rule.tokenDigest, digest)) return 'needs the token of its tokenFile, and the hello carries another';
  }
  return null;
}

/**
 * What a refused peer is told: the same for an unknown name and a known one it may not
 * open, so that hellos cannot probe which guests exist; no name is in it.
 */
export function peerRefusal(peer: PeerIdentity, token: string | undefined): string {
  const who = isKnown(peer) ? `uid ${peer.uid}` : 'a peer whose uid cannot be told';
  return `no guest of that name accepts this peer (${who}, ${token ? 'with a token that opens none' : 'without a token'})`;
}

/**
 * A guest's `auth` as a rule: its token file read now (the supervisor's start). Throws Error
 * naming the file and what is wrong: unreadable, not a regular file, readable by others or
 * writable by group or others (anyone who can read it can be the guest), or a token shorter
 * than MIN_TOKEN_LENGTH.
 */
export async function loadAuthRule(auth: { uid?: number | number[]; tokenFile?: string }): Promise<AuthRule> {
  const rule: AuthRule = {};
  if (auth.uid !== undefined) rule.uids = Array.isArray(auth.uid) ? auth.uid : [auth.uid];
  if (auth.tokenFile !== undefined) {
    const file = auth.tokenFile;
    let text: string;
    try {
      const st = await stat(file);
      if (!st.isFile()) throw new Error('not a regular file');
      if (st.mode & 0o004) throw new Error(`readable by other users (mode ${(st.mode & 0o777).toString(8)}): chmod o-r`);
      if (st.mode & 0o022) throw new Error(`writable by group or others (mode ${(st.mode & 0o777).toString(8)}): chmod go-w`);
      text = (await readFile(file, 'utf8')).trim();
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new Error(`token file ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.message}`);
    }
    if (text.length < MIN_TOKEN_LENGTH) throw new Error(`token file ${file}: holds ${text.length} characters, at least ${MIN_TOKEN_LENGTH} are needed`);
    rule.tokenDigest = tokenDigest(text);
  }
  return rule;
}
