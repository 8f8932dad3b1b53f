// Every instruction form the user-mode trap shim decodes, executed for real by a C
// program against the shim's local-echo device; the shim's trace must list exactly the
// accesses the program says each form makes, and the registers/memory must be right.
import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { runTrapped, trapEnv, TRAP_BUILD_DIR } from '../src/trap/user.ts';
import { buildTrap } from './helpers/trap-build.ts';

const FORMS = `${TRAP_BUILD_DIR}/test-forms`;
// A BAR path that does not exist: only the shim can make its open succeed.
const MMIO_PATH = '/nonexistent/muxtrap-test-bar';

function runWithTrace(mode: string): Promise<{ code: number | null; stdout: string; trace: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(FORMS, [mode], {
      stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
      env: trapEnv({ localEcho: true, traceFd: 3, mmioPath: MMIO_PATH }),
    });
    let stdout = '';
    let trace = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8');
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (s: string) => (trace += s));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, trace }));
  });
}

describe('user-mode trap shim: instruction forms', () => {
  beforeAll(() => buildTrap());

  it('decodes and emulates in/out, ins/outs and MMIO moves exactly', async () => {
    const { code, stdout, trace } = await runWithTrace('forms');
    const fails = stdout.split('\n').filter((l) => l.startsWith('FAIL'));
    expect(fails).toEqual([]);
    expect(stdout).toContain('0 failures');
    expect(code).toBe(0);
    const expected = stdout.split('\n').filter((l) => l.startsWith('expect ')).map((l) => l.slice(7));
    const traced = trace.split('\n').filter((l) => l.length > 0);
    expect(expected.length).toBeGreaterThan(50);
    expect(traced).toEqual(expected);
    // Spot checks that the forms are the ones named (the expectation list is the spec).
    expect(traced).toContain('pio r 0x1f0/2 n=3 v=0x0 b=c56d78772b71'); // std; rep insw
    expect(traced).toContain('mmio w 0xfebf0818/8 n=1 v=0xfffffffffffffffe'); // mov qword, imm32 sign-extended
  });

  it('reports an unsupported instruction on MMIO with its bytes and address, then dies by SIGSEGV', async () => {
    const r = await runTrapped(FORMS, ['unsupported'], { localEcho: true, mmioPath: MMIO_PATH });
    expect(r.signal).toBe('SIGSEGV');
    expect(r.stdout).not.toContain('skipped');
    const addr = /adding to MMIO at (0x[0-9a-f]+)/.exec(r.stdout)?.[1];
    expect(addr).toBeDefined();
    // addl $1, 0x10(%r12): 41 83 44 24 10 01
    expect(r.stderr).toMatch(
      new RegExp(`muxtrap: unsupported instruction at rip 0x[0-9a-f]+ touching MMIO address ${addr} \\(bus 0xfebf0010\\): bytes from rip [0-9a-f ]*83 [0-9a-f ]*01`),
    );
  });

  it("keeps trapping after the program installs its own SIGSEGV handler, which still gets other faults", async () => {
    const r = await runTrapped(FORMS, ['own-handler'], { localEcho: true, mmioPath: MMIO_PATH });
    expect(r.stdout).toContain('ok port I/O still trapped after sigaction');
    expect(r.stdout).toContain('ok MMIO still trapped after sigaction');
    expect(r.stdout).toContain('own handler: signal 11');
    expect(r.stdout).toContain('back from own handler');
    expect(r.code).toBe(0);
  });

  it('a SIGSEGV sent by kill() gets the program its own disposition: ignored, or the default (death)', async () => {
    const ignored = await runTrapped(FORMS, ['sent-ignored'], { localEcho: true, mmioPath: MMIO_PATH });
    expect(ignored.stdout).toContain('ok port I/O still trapped after kill');
    expect(ignored.stdout).toContain('alive after kill');
    expect(ignored.code).toBe(0);
    const dfl = await runTrapped(FORMS, ['sent-default'], { localEcho: true, mmioPath: MMIO_PATH });
    expect(dfl.stdout).toContain('ok port I/O trapped before kill');
    expect(dfl.stdout).not.toContain('alive after kill');
    expect(dfl.signal).toBe('SIGSEGV');
  });
});

