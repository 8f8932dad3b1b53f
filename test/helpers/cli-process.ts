// The real `muxvisor` CLI as a child process, for the CLI tests: started from the repo root,
// its output collected; every child is killed and every temporary folder removed after each
// test of the file that calls useCliProcesses().
import { afterEach } from 'vitest';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'src/bin/muxvisor.mjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  result: Promise<CliResult>;
  stdout: () => string;
  /**
   * Resolves once stdout holds `text`; rejects if the process exits first. No deadline of
   * its own (a loaded machine may take seconds to start the CLI): the test's timeout is it.
   */
  printed: (text: string) => Promise<void>;
}

export function useCliProcesses(prefix: string) {
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  const start = (args: string[]): CliProcess => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    let closed = false;
    const waiters = new Set<() => void>();
    const wake = (): void => waiters.forEach((w) => w());
    child.stdout!.on('data', (d) => {
      stdout += d;
      wake();
    });
    child.stderr!.on('data', (d) => (stderr += d));
    const result = new Promise<CliResult>((resolve) =>
      child.on('close', (code) => {
        closed = true;
        resolve({ code, stdout, stderr });
        wake();
      }),
    );
    const printed = (text: string): Promise<void> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (!stdout.includes(text) && !closed) return;
          waiters.delete(check);
          if (stdout.includes(text)) resolve();
          else reject(new Error(`muxvisor ${args.join(' ')} exited before printing ${text}; stdout: ${stdout}; stderr: ${stderr}`));
        };
        waiters.add(check);
        check();
      });
    return { child, result, stdout: () => stdout, printed };
  };
  const cli = (...args: string[]): Promise<CliResult> => start(args).result;
  return { tmp, start, cli };
}
