// Starts a real nbdkit (Debian package nbdkit) on a Unix socket or loopback port in a temp
// dir: the NBD server behind `--backend nbd` of the demo, and behind the NBD tests.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NbdkitServer {
  /** Unix socket path ('' for a TCP server). */
  socket: string;
  /** TCP port when started with `tcpPort`. */
  port?: number;
  dir: string;
  proc: ChildProcess;
  /** SIGTERM (or the given signal) to this nbdkit only, then wait for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * `startNbdkit(['memory', '16M'])` runs `nbdkit -f --exit-with-parent -U DIR/nbd.sock memory 16M`.
 * Server options (`-r`, `--filter=...`) go first in `args`, as on nbdkit's command line.
 */
export async function startNbdkit(args: string[], opts: { tcpPort?: number } = {}): Promise<NbdkitServer> {
  const dir = mkdtempSync(join(tmpdir(), 'mv-nbd-'));
  const tcp = opts.tcpPort !== undefined;
  const socket = tcp ? '' : join(dir, 'nbd.sock');
  const listen = tcp ? ['-i', '127.0.0.1', '-p', String(opts.tcpPort)] : ['-U', socket];
  // -P: nbdkit writes the pid file once it listens, for Unix and TCP alike.
  const pidFile = join(dir, 'nbdkit.pid');
  const proc = spawn('nbdkit', ['-f', '--exit-with-parent', '-P', pidFile, ...listen, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const deadline = Date.now() + 10_000;
  while (!existsSync(pidFile) || (!tcp && !existsSync(socket))) {
    if (proc.exitCode !== null) throw new Error(`nbdkit ${args.join(' ')} exited ${proc.exitCode}: ${stderr}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`nbdkit ${args.join(' ')} did not start listening: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    socket,
    port: opts.tcpPort,
    dir,
    proc,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
