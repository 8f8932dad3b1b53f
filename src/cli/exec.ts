// `muxvisor exec [--socket PATH --guest NAME [--token-file F]] -- PROGRAM [ARGS...]`: run an
// unmodified program under the user-mode trap shim (native/trap) as a guest of a supervisor.
// With --socket it joins a running `muxvisor run` (the guest's `auth` says what it needs: a
// uid, or the token of --token-file / $MUXVISOR_TOKEN); without, it starts a private
// supervisor with one ATA disk on a temporary image (the PIIX IDE function, its ports and
// IRQ 14 granted to the guest) that knows the program by a one-time token, runs the program
// and exits with the program's exit status.

import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, ftruncateSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parseConfig } from '../config/load.ts';
import type { ConfigInput } from '../config/schema.ts';
import { DeviceRegistry } from '../devices/registry.ts';
import { createLogger } from '../log.ts';
import { Supervisor } from '../supervisor.ts';
import { spawnTrapped, trapLibPath } from '../trap/user.ts';
import { globalOptions } from './common.ts';
import { AccessLog } from '../log/access-log.ts';

/** Guest name of the program under a private supervisor. */
export const EXEC_GUEST = 'exec';
const DEFAULT_IMAGE_MIB = 16;

interface ExecOptions {
  socket?: string;
  guest?: string;
  image?: string;
  sizeMib: string;
  trace?: boolean;
  tokenFile?: string;
  accessLog?: string;
}

/**
 * The private supervisor's config: one ATA disk (the built-in `ata` model when the
 * registry has it, else QEMU's PIIX3 IDE over qtest) granted whole to the guest.
 */
export function privateConfig(registry: DeviceRegistry, socket: string, image: string, sizeMiB: number, guest = EXEC_GUEST): ConfigInput {
  const disk = registry.has('ata')
    ? { id: 'disk', kind: 'ata', backend: { type: 'file' as const, path: image, sizeMiB } }
    : { id: 'disk', kind: 'qemu-ide', backend: { type: 'qemu' as const, image } };
  return { socket, devices: [disk], guests: [{ name: guest, grants: [{ device: 'disk' }] }] };
}

/** Exit status of a finished child the way a shell reports it (128 + signal number). */
function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
}

function runProgram(program: string, args: string[], socket: string, guest: string, trace: boolean, token?: string, started?: (pid: number | undefined) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawnTrapped(program, args, { socket, guest, stdio: 'inherit', ...(token !== undefined ? { token } : {}), ...(trace ? { traceFd: 2 } : {}) });
    started?.(child.pid);
    // Ctrl-C reaches the child directly (same process group): we only outlive it, so the
    // supervisor closes cleanly. SIGTERM/SIGHUP sent to us are passed on.
    const ignore = () => {};
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', ignore);
    process.on('SIGTERM', forward);
    process.on('SIGHUP', forward);
    const done = () => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', forward);
      process.off('SIGHUP', forward);
    };
    child.once('error', (e) => {
      done();
      reject(new Error(`cannot run ${program}: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    });
    child.once('exit', (code, signal) => {
      done();
      resolve(exitStatus(code, signal));
    });
  });
}

/** The content of a token file, trimmed (as the supervisor reads the guest's auth.tokenFile). */
function readToken(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new Error(`--token-file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

async function withPrivateSupervisor(
  opts: ExecOptions,
  cmd: Command,
  run: (socket: string, token: string, started: (pid: number | undefined) => void) => Promise<number>,
): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'muxvisor-exec-'));
  try {
    const sizeMiB = Number(opts.sizeMib);
    if (!Number.isFinite(sizeMiB) || sizeMiB <= 0) throw new Error(`--size-mib must be a positive number, got ${opts.sizeMib}`);
    const image = opts.image ?? join(dir, 'disk.img');
    if (!opts.image) {
      const fd = openSync(image, 'w');
      ftruncateSync(fd, Math.round(sizeMiB * 1024 * 1024));
      closeSync(fd);
    }
    // The program's output is what the user asked for: the supervisor only logs warnings
    // unless --log-level was given.
    const explicit = cmd.parent?.getOptionValueSource('logLevel') === 'cli';
    const logger = createLogger({ level: explicit ? globalOptions(cmd).logLevel : 'warn' });
    const registry = new DeviceRegistry();
    const socket = join(dir, 'sock');
    const config = parseConfig(privateConfig(registry, socket, image, sizeMiB, opts.guest ?? EXEC_GUEST), '<muxvisor exec>', { knownKinds: registry.kinds() });
    // Nobody but the program it starts may be its guest: by the one-time token it is handed.
    const accessLog = opts.accessLog !== undefined ? new AccessLog(opts.accessLog) : undefined;
    const sup = new Supervisor({ config, logger, registry, defaultAuth: null, accessLog });
    try {
      await sup.start();
      await accessLog?.start(sup);
      await sup.listen();
      const guest = opts.guest ?? EXEC_GUEST;
      const token = sup.issueToken(guest);
      // The program and what it runs (a script's drivers, forked children) may be the guest.
      return await run(socket, token, (pid) => sup.bindToken(guest, token, pid));
    } finally {
      await sup.close();
      await accessLog?.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function register(program: Command): void {
  program
    .command('exec')
    .description('run an unmodified program with its port I/O, MMIO, interrupts and DMA trapped (LD_PRELOAD shim) as a guest of a supervisor')
    .argument('<program>', 'the program (put -- before it so its options are not taken as ours)')
    .argument('[args...]', "the program's arguments")
    .option('--socket <path>', 'socket of a running `muxvisor run`; without it a private supervisor with one ATA disk is started')
    .option('--guest <name>', `guest name in the supervisor's config (default with a private supervisor: ${EXEC_GUEST})`)
    .option('--image <path>', 'disk image of the private supervisor (default: a temporary zeroed image)')
    .option('--size-mib <n>', 'size of the temporary image', String(DEFAULT_IMAGE_MIB))
    .option('--token-file <path>', "with --socket: the guest's token (its auth.tokenFile); default: $MUXVISOR_TOKEN, if set")
    .option('--trace', "print every trapped access on the program's stderr", false)
    .option('--access-log <file>', 'with the private supervisor: record every access (.jsonl: JSON lines, .mpk: msgpack; see muxvisor log)')
    .action(async (prog: string, args: string[], opts: ExecOptions, cmd: Command) => {
      trapLibPath(); // a clear error before anything starts when the shim is not built
      if (opts.socket) {
        if (opts.accessLog !== undefined) throw new Error('--access-log records at the supervisor: give it to the `muxvisor run` behind --socket');
        if (!opts.guest) throw new Error('exec --socket needs --guest NAME (a guest of that supervisor\'s config)');
        const token = opts.tokenFile !== undefined ? readToken(opts.tokenFile) : undefined;
        process.exitCode = await runProgram(prog, args, opts.socket, opts.guest, opts.trace === true, token);
        return;
      }
      if (opts.tokenFile !== undefined) throw new Error('--token-file goes with --socket (a private supervisor hands its program a token of its own)');
      process.exitCode = await withPrivateSupervisor(opts, cmd, (socket, token, started) =>
        runProgram(prog, args, socket, opts.guest ?? EXEC_GUEST, opts.trace === true, token, started),
      );
    });
}
