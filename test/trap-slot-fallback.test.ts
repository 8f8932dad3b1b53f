// The shim goes on over the socket when it cannot make its access slot: here because
// memfd_create fails (EPERM from a sandbox that refuses sealable memfds: a seccomp filter
// the test puts in front of the program). It says so once on stderr; MUXVISOR_SLOT=always insists on
// the slot and stops the program instead (exit 70).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { Supervisor } from '../src/supervisor.ts';
import { runTrapped, TRAP_BUILD_DIR, TRAP_EXIT_CHANNEL_LOST } from '../src/trap/user.ts';
import { buildTrap } from './helpers/trap-build.ts';

const NO_SHARED_DMA = 'muxtrap: DMA memory not shared (memfd_create: Operation not permitted): the supervisor reaches it through dmar/dmaw\n';

const NO_MEMFD_PY = String.raw`# Runs a program in a sandbox (a seccomp filter) that refuses sealable memfds with EPERM
# (memfd_create with MFD_ALLOW_SEALING; other memfds, such as the shim's BAR stand-ins,
# are fine), to see the shim go on without its access slot.
import ctypes, os, platform, struct, sys
assert platform.machine() == 'x86_64'
libc = ctypes.CDLL(None, use_errno=True)
NR_MEMFD_CREATE, AUDIT_ARCH_X86_64, EPERM, MFD_ALLOW_SEALING = 319, 0xC000003E, 1, 2
def ins(code, jt, jf, k): return struct.pack('HBBI', code, jt, jf, k)
prog = b''.join([
    ins(0x20, 0, 0, 4),                       # ld [arch]
    ins(0x15, 0, 5, AUDIT_ARCH_X86_64),       # jeq x86_64 ? next : allow
    ins(0x20, 0, 0, 0),                       # ld [nr]
    ins(0x15, 0, 3, NR_MEMFD_CREATE),         # jeq memfd_create ? next : allow
    ins(0x20, 0, 0, 24),                      # ld [args[1] low word] (flags)
    ins(0x45, 0, 1, MFD_ALLOW_SEALING),       # jset MFD_ALLOW_SEALING ? errno : allow
    ins(0x06, 0, 0, 0x00050000 | EPERM),      # ret SECCOMP_RET_ERRNO | EPERM
    ins(0x06, 0, 0, 0x7FFF0000),              # ret SECCOMP_RET_ALLOW
])
filt = ctypes.create_string_buffer(prog)
class Fprog(ctypes.Structure):
    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]
fp = Fprog(len(prog) // 8, ctypes.addressof(filt))
if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(fp), 0, 0):  # PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP FILTER
    sys.exit('seccomp: %s' % os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
`;

describe.skipIf(arch() !== 'x64')('the shim without an access slot', () => {
  let dir = '';
  let sup: Supervisor | null = null;
  let python = '';
  beforeAll(() => {
    buildTrap();
    // The interpreter itself, not a wrapper script (pyenv): it execs the program.
    python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  });
  afterEach(async () => {
    await sup?.close();
    sup = null;
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(slot?: 'always'): Promise<Awaited<ReturnType<typeof runTrapped>>> {
    dir = mkdtempSync(join(tmpdir(), 'muxtrap-noslot-'));
    const socket = join(dir, 'sock');
    writeFileSync(join(dir, 'no-memfd.py'), NO_MEMFD_PY);
    sup = new Supervisor({ config: parseConfig({ socket, devices: [{ id: 'scr', kind: 'scratch' }], guests: [{ name: 'noslot', grants: [{ device: 'scr' }] }] }) });
    await sup.listen();
    return runTrapped(python, [join(dir, 'no-memfd.py'), `${TRAP_BUILD_DIR}/test-scratch`], { socket, guest: 'noslot', ...(slot ? { slot } : {}) });
  }

  it('says so once and serves every access over the socket when memfd_create fails', async () => {
    const r = await run();
    // No sealed memfd for the DMA memory either: it is not shared, the supervisor uses dmar/dmaw.
    expect(r.stderr).toBe(`${NO_SHARED_DMA}muxtrap: no access slot (memfd_create: Operation not permitted): accesses go over the socket\n`);
    expect(r.stdout).not.toContain('FAIL');
    expect(r.stdout).toContain('ok DMA fill reached our memory');
    expect(r.code).toBe(0);
    const st = sup!.stats();
    expect(st.channel.slotSessions ?? 0).toBe(0);
    expect(st.channel.slotRefused ?? 0).toBe(0); // nothing was offered
    expect(st.guests[0].accesses).toBeGreaterThan(0);
    expect(st.protocolErrors).toEqual({});
  });

  it('stops the program with MUXVISOR_SLOT=always', async () => {
    const r = await run('always');
    expect(r.stderr).toBe(`${NO_SHARED_DMA}muxtrap: no access slot (memfd_create: Operation not permitted), and MUXVISOR_SLOT=always\n`);
    expect(r.code).toBe(TRAP_EXIT_CHANNEL_LOST);
    expect(sup!.stats().guests[0].accesses).toBe(0);
  });
});
