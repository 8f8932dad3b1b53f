// Builds the user-mode trap shim and its test programs once per test file (make is a
// no-op when they are up to date).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export function buildTrap(): void {
  execFileSync('make', ['-s', '-C', fileURLToPath(new URL('../../native/trap', import.meta.url))], { stdio: 'inherit' });
}
