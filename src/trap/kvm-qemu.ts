// The other side of the side-by-side comparison: the SAME guest binary booted by QEMU as a
// multiboot kernel (-kernel), against QEMU's own PIIX IDE, output on -debugcon stdio. QEMU
// does not stop when the guest halts, so it is stopped once the guest printed its RESULT line.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type GuestResult, addGuestLine, isVerified, newGuestOutput, verifiedBytesPerSecond } from './kvm-output.ts';
import { GUEST_IMAGES, KvmRunnerError } from './kvm-guest.ts';

export const QEMU_BINARY = 'qemu-system-x86_64';

export interface QemuGuestOptions {
  /** Raw disk image attached as the primary IDE master. */
  disk: string;
  kernel?: string;
  cmdline?: string;
  accel: 'kvm' | 'tcg';
  memoryMiB?: number;
  timeoutMs?: number;
}

export interface QemuGuestResult {
  output: string[];
  result: GuestResult | null;
  verified: boolean;
  /** MARK lines, µs when they reached this process (QEMU writes debugcon bytes unbuffered). */
  marks: Record<string, number>;
  bytesPerSecond: number | null;
  /** True when QEMU was stopped by the timeout before any RESULT line. */
  timedOut: boolean;
  stderr: string;
}

export function qemuArgs(opts: QemuGuestOptions): string[] {
  return [
    '-machine', 'pc', '-accel', opts.accel, '-m', String(opts.memoryMiB ?? 64),
    '-nodefaults', '-display', 'none', '-no-reboot', '-monitor', 'none', '-serial', 'none',
    '-kernel', opts.kernel ?? GUEST_IMAGES.ataDriver,
    '-append', opts.cmdline ?? '',
    '-drive', `file=${opts.disk},if=ide,format=raw,cache=writeback`,
    '-debugcon', 'stdio',
  ];
}

export function runQemuGuest(opts: QemuGuestOptions): Promise<QemuGuestResult> {
  const kernel = opts.kernel ?? GUEST_IMAGES.ataDriver;
  if (!existsSync(kernel)) throw new KvmRunnerError(`guest image ${kernel} is missing: run \`make -C native\``);
  if (!existsSync(opts.disk)) throw new KvmRunnerError(`disk image ${opts.disk} does not exist`);
  const child = spawn(QEMU_BINARY, qemuArgs(opts), { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = newGuestOutput();
  let stderr = '';
  let pending = '';
  let timedOut = false;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const at = Number(process.hrtime.bigint() / 1000n);
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).replace(/\r$/, '');
      pending = pending.slice(nl + 1);
      if (addGuestLine(out, line, at)) child.kill('SIGTERM');
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 120_000);
  return new Promise((resolve, reject) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new KvmRunnerError(`cannot start ${QEMU_BINARY}: ${e.message}`));
    });
    child.on('close', () => {
      clearTimeout(timer);
      resolve({
        output: out.lines,
        result: out.result,
        verified: isVerified(out.result),
        marks: out.marks,
        bytesPerSecond: verifiedBytesPerSecond(out),
        timedOut: timedOut && !out.result,
        stderr,
      });
    });
  });
}
