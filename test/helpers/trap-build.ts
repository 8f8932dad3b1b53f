// Builds the user-mode trap shim, its test programs and the access slot addon once per
// test file (make is a no-op when they are up to date).
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Test files run in parallel forks and each builds in its beforeAll: on a stale tree two
// makes would relink the same programs at once, one fork running a half-written binary or
// library the other is still writing. flock(1) takes turns (the later make finds all built).
const LOCK = join(tmpdir(), 'muxvisor-native-make.lock');

export function buildTrap(): void {
  for (const dir of ['../../native/trap', '../../native/shm']) {
    execFileSync('flock', [LOCK, 'make', '-s', '-C', fileURLToPath(new URL(dir, import.meta.url))], { stdio: 'inherit' });
  }
}
