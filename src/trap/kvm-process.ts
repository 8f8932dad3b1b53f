// The helper-process side of the KVM trap layer: launches native/kvm/build/muxvisor-kvm (one
// helper process per guest, see native/kvm/README.md), which boots a multiboot guest in a
// KVM VM and forwards its port/MMIO exits to the supervisor over the channel protocol.
// Guest debug-port lines come back on the runner's stdout as `[name @µs] text`; the final
// stderr line says why the guest stopped (`exit reason=hlt code=0 ...`).

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { addGuestLine, isVerified, newGuestOutput, verifiedBytesPerSecond } from './kvm-output.ts';
import {
  GUEST_IMAGES,
  KVM_RUNNER,
  type KvmExitReason,
  type KvmGuestHandle,
  type KvmGuestOptions,
  type KvmGuestResult,
  type KvmRunnerCounters,
  KvmRunnerError,
} from './kvm-guest.ts';

const EXIT_CODES: Record<number, KvmExitReason> = {
  0: 'hlt',
  1: 'host-error',
  3: 'no-kvm',
  10: 'shutdown',
  11: 'internal-error',
  12: 'disconnected',
  13: 'terminated',
};

function runnerArgs(opts: KvmGuestOptions): string[] {
  const image = opts.image ?? GUEST_IMAGES.ataDriver;
  const args = ['--name', opts.name, '--stamp'];
  if (opts.flat) {
    args.push('--flat', image, '--load-addr', String(opts.flat.loadAddr));
    if (opts.flat.entry !== undefined) args.push('--entry', String(opts.flat.entry));
    if (opts.flat.realMode) args.push('--real-mode');
  } else args.push('--kernel', image);
  if (opts.cmdline) args.push('--cmdline', opts.cmdline);
  if (opts.memoryMiB) args.push('--mem', String(opts.memoryMiB));
  if (opts.connect) args.push('--connect', opts.connect);
  if (opts.kvmDev) args.push('--kvm-dev', opts.kvmDev);
  return args;
}

function parseCounters(stderr: string): KvmRunnerCounters | null {
  const m = /exit reason=\S+ code=\d+ exits=(\d+) io=(\d+) mmio=(\d+) local=(\d+) forwarded=(\d+)/.exec(stderr);
  if (!m) return null;
  return { exits: +m[1], io: +m[2], mmio: +m[3], local: +m[4], forwarded: +m[5] };
}

/** Starts one guest; `done` resolves when the runner exits (never rejects for guest failures). */
export function startKvmGuest(opts: KvmGuestOptions): KvmGuestHandle {
  if (!existsSync(KVM_RUNNER)) throw new KvmRunnerError(`${KVM_RUNNER} is missing: run \`make -C native\` (npm install builds it)`);
  const image = opts.image ?? GUEST_IMAGES.ataDriver;
  if (!existsSync(image)) throw new KvmRunnerError(`guest image ${image} is missing: run \`make -C native\``);
  const env = opts.token !== undefined ? { ...process.env, MUXVISOR_TOKEN: opts.token } : process.env;
  const child: ChildProcess = spawn(KVM_RUNNER, runnerArgs(opts), { stdio: ['ignore', 'pipe', 'pipe'], env });
  const output = newGuestOutput();
  const waiters = new Set<{ re: RegExp; resolve: (l: string) => void; reject: (e: Error) => void }>();
  let stderr = '';
  let timedOut = false;
  let pending = '';
  const prefix = /^\[[^\]@]*?(?: @(\d+))?\] (.*)$/;
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const raw = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const m = prefix.exec(raw);
      const line = m ? m[2] : raw;
      const at = m?.[1] ? Number(m[1]) : Number(process.hrtime.bigint() / 1000n);
      addGuestLine(output, line, at);
      opts.onLine?.(line);
      for (const w of waiters) if (w.re.test(line)) (waiters.delete(w), w.resolve(line));
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
  }, opts.timeoutMs ?? 120_000);
  const done = new Promise<KvmGuestResult>((resolveDone, rejectDone) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      rejectDone(new KvmRunnerError(`cannot start ${KVM_RUNNER}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let exitReason: KvmExitReason = code !== null && code in EXIT_CODES ? EXIT_CODES[code] : 'crashed';
      if (timedOut) exitReason = 'timeout';
      for (const w of waiters) w.reject(new KvmRunnerError(`guest ${opts.name} stopped (${exitReason}${signal ? `, ${signal}` : ''}) before a line matched ${w.re}`));
      waiters.clear();
      resolveDone({
        name: opts.name,
        exitReason,
        exitCode: code,
        output: output.lines,
        stderr,
        result: output.result,
        verified: isVerified(output.result),
        marks: output.marks,
        bytesPerSecond: verifiedBytesPerSecond(output),
        counters: parseCounters(stderr),
        resets: [...stderr.matchAll(/device (\S+) was reset: (.*)/g)].map((m) => ({ device: m[1], reason: m[2] })),
      });
    });
  });
  return {
    name: opts.name,
    pid: child.pid,
    output,
    done,
    waitForLine: (re) => {
      const seen = output.lines.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((res, rej) => waiters.add({ re, resolve: res, reject: rej }));
    },
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
