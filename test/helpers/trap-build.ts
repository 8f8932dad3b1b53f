// Builds the user-mode trap shim, its test programs and the access slot addon once per
// test file (make is a no-op when they are up to date).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export function buildTrap(): void {
  for (const dir of ['../../native/trap', '../../native/shm']) {
    execFileSync('make', ['-s', '-C', fileURLToPath(new URL(dir, import.meta.url))], { stdio: 'inherit' });
  }
}
