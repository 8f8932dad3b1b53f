// `run: {type: 'user', argv, env?, cwd?}`: an unmodified program under the trap shim, handed
// a token (MUXVISOR_TOKEN) that opens its guest for that process and its descendants, one
// connection at a time, while it runs (src/channel/peer-auth.ts).

import type { ChildProcess } from 'node:child_process';
import type { GuestConfig } from '../config/schema.ts';
import type { Supervisor } from '../supervisor.ts';
import type { GuestOutcome, LaunchedGuest } from './outcome.ts';

export async function launchUser(sup: Supervisor, socket: string, g: GuestConfig, run: { argv: string[]; env?: Record<string, string>; cwd?: string }): Promise<LaunchedGuest> {
  const { spawnTrapped } = await import('../trap/user.ts');
  // The shim sends it in its hello: the name is this process's, not whoever says it first.
  const token = sup.issueToken(g.name);
  const child: ChildProcess = spawnTrapped(run.argv[0], run.argv.slice(1), {
    socket,
    guest: g.name,
    token,
    cwd: run.cwd,
    env: { ...process.env, ...run.env },
    // Its output goes to stderr: stdout belongs to the supervisor (--json).
    stdio: ['ignore', 2, 2],
  });
  sup.bindToken(g.name, token, child.pid); // the program and what it runs may be the guest, one at a time
  const done = new Promise<GuestOutcome>((res) => {
    child.once('error', (e) => res({ guest: g.name, how: 'user', ok: false, detail: `cannot start ${run.argv[0]}: ${e.message}` }));
    child.once('exit', (code, sig) => res({ guest: g.name, how: 'user', ok: code === 0, detail: sig ? `killed by ${sig}` : `exit status ${code}` }));
  }).finally(() => sup.revokeToken(g.name, token)); // unused when it never connected: void now
  return { name: g.name, done, stop: () => child.kill('SIGTERM') };
}
