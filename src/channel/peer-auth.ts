// Who may say hello as which guest (README "Guests and their credentials"). A socket peer
// takes a guest's name only when it proves it is that guest, by one of:
//   1. the one-time token the supervisor handed the process it started for the guest
//      (`muxvisor run`, `muxvisor exec`: MUXVISOR_TOKEN), used up by the hello it opens;
//   2. the credential the guest's `auth` names: `uid` (the peer's uid by SO_PEERCRED is
//      one of them), `tokenFile` (the hello's `token` equals the file's content); when both
//      are named, both must hold;
//   3. for a guest with neither `auth` nor `run`, the supervisor's default: by default a peer
//      of the supervisor's own uid; `muxvisor run` has none, so such a guest is refused.
// A guest with `run` and no `auth` is the process the supervisor started and nobody else.
// Tokens are compared as SHA-256 digests in constant time and never logged. A refusal tells
// the peer nothing about which names exist; the reason is for the log (peerRefusal).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
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

  /** The process the token was for has ended: its token opens nothing any more. */
  revoke(guest: string, token: string): void {
    this.oneTime.get(guest)?.delete(tokenDigest(token).toString('hex'));
  }

  /** Whether a hello naming `guest` with `token` from `peer` may open it (nothing is used up). */
  check(guest: string, token: string | undefined, peer: PeerIdentity): AuthVerdict {
    const g = this.guests.get(guest);
    if (!g) return { ok: false, why: `no guest of this name in the configuration` };
    const digest = token !== undefined && token.trim() !== '' ? tokenDigest(token.trim()) : null;
    if (digest) {
      for (const d of this.oneTime.get(guest) ?? []) {
        if (timingSafeEqual(Buffer.from(d, 'hex'), digest)) return { ok: true, how: 'the one-time token of the process the supervisor started', oneTime: d };
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
