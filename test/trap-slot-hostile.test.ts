// The access slot is a peer's sealed memfd (PROTOCOL.md "Access slot"), which the real
// supervisor maps through /proc/PID/fd/N with PID from SO_PEERCRED. Against hostile or
// broken raw peers (a Python program, no shim): a peer that tries to shrink or grow its
// slot after the welcome fails with EPERM and the supervisor keeps serving (with a
// truncatable file this killed the supervisor with SIGBUS); a slot that is not a sealed
// memfd of the right size is refused and the socket carries the accesses; a slot request
// is held to the rules of an `acc` frame; and a flood of doorbells or `acc` frames does
// not turn into as many polls of the slots.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { Supervisor } from '../src/supervisor.ts';
import { buildTrap } from './helpers/trap-build.ts';

const SCRATCH_ID = 0x5343_5231;

// The raw peer: connects, offers a slot as `mode` says, does what `mode` says, prints one
// JSON line per event.
const PEER_PY = String.raw`# A raw channel peer (no shim) that offers an access slot of its own making: a sealed
# memfd as the shim makes it, or something else (modes below). One JSON line per event.
import errno, fcntl, json, mmap, os, select, socket, struct, sys, time

def enc(o):
    if isinstance(o, dict):
        b = bytes([0x80 | len(o)]) if len(o) < 16 else b'\xde' + struct.pack('>H', len(o))
        return b + b''.join(enc(k) + enc(v) for k, v in o.items())
    if isinstance(o, str):
        s = o.encode()
        return (bytes([0xa0 | len(s)]) if len(s) < 32 else b'\xd9' + bytes([len(s)])) + s
    if isinstance(o, bool):
        return b'\xc3' if o else b'\xc2'
    if isinstance(o, int):
        if o < 128: return bytes([o])
        if o < 1 << 8: return b'\xcc' + bytes([o])
        if o < 1 << 16: return b'\xcd' + struct.pack('>H', o)
        if o < 1 << 32: return b'\xce' + struct.pack('>I', o)
        return b'\xcf' + struct.pack('>Q', o)
    if isinstance(o, list):
        return bytes([0x90 | len(o)]) + b''.join(enc(x) for x in o)
    raise TypeError(o)

def dec(b, i=0):
    c = b[i]
    if c < 0x80: return c, i + 1
    if 0x80 <= c <= 0x8f or c in (0xde, 0xdf):
        n, i = (c & 15, i + 1) if c <= 0x8f else ((struct.unpack_from('>H', b, i + 1)[0], i + 3) if c == 0xde else (struct.unpack_from('>I', b, i + 1)[0], i + 5))
        d = {}
        for _ in range(n):
            k, i = dec(b, i); v, i = dec(b, i); d[k] = v
        return d, i
    if 0x90 <= c <= 0x9f or c in (0xdc, 0xdd):
        n, i = (c & 15, i + 1) if c <= 0x9f else ((struct.unpack_from('>H', b, i + 1)[0], i + 3) if c == 0xdc else (struct.unpack_from('>I', b, i + 1)[0], i + 5))
        a = []
        for _ in range(n):
            v, i = dec(b, i); a.append(v)
        return a, i
    if 0xa0 <= c <= 0xbf: n = c & 31; return b[i + 1:i + 1 + n].decode(), i + 1 + n
    if c in (0xd9, 0xda, 0xdb):
        w = {0xd9: 1, 0xda: 2, 0xdb: 4}[c]; n = int.from_bytes(b[i + 1:i + 1 + w], 'big'); return b[i + 1 + w:i + 1 + w + n].decode(), i + 1 + w + n
    if c in (0xc4, 0xc5, 0xc6):
        w = {0xc4: 1, 0xc5: 2, 0xc6: 4}[c]; n = int.from_bytes(b[i + 1:i + 1 + w], 'big'); return bytes(b[i + 1 + w:i + 1 + w + n]), i + 1 + w + n
    if c in (0xcc, 0xcd, 0xce, 0xcf):
        w = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[c]; return int.from_bytes(b[i + 1:i + 1 + w], 'big'), i + 1 + w
    if c == 0xc0: return None, i + 1
    if c == 0xc2: return False, i + 1
    if c == 0xc3: return True, i + 1
    if c >= 0xe0: return c - 256, i + 1
    raise ValueError('msgpack byte 0x%x' % c)

def frame(o):
    p = enc(o)
    return struct.pack('<I', len(p)) + p

def out(**kw):
    print(json.dumps(kw), flush=True)

sock_path, mode, guest = sys.argv[1], sys.argv[2], sys.argv[3]
count = int(sys.argv[4]) if len(sys.argv) > 4 else 0
SIZE = 8192
SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL

def memfd(size, seals):
    fd = os.memfd_create('muxvisor-slot', os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    if seals: fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    return fd

if mode == 'plain':
    path = os.path.join(os.path.dirname(sock_path), 'plain-slot')
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600); os.ftruncate(fd, SIZE)
elif mode == 'unsealed': fd = memfd(SIZE, 0)
elif mode == 'noseal-seal': fd = memfd(SIZE, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
elif mode == 'wrongsize': fd = memfd(4096, SEALS)
elif mode == 'nofd': fd = 987
else: fd = memfd(SIZE, SEALS)
mem = None
if mode not in ('nofd',):
    mem = mmap.mmap(fd, 4096 if mode == 'wrongsize' else SIZE)
    mem[0:4] = struct.pack('<I', 0x314c534d); mem[12:16] = struct.pack('<I', 1)  # magic, asleep

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
s.sendall(frame({'t': 'hello', 'v': 1, 'guest': guest, 'caps': ['pio', 'mmio', 'irq', 'string', 'slot'], 'slot': {'fd': fd, 'size': SIZE}}))
buf = b''

def frames(timeout):
    """Frames that arrive within timeout seconds (all that are already there when 0)."""
    global buf
    got = []
    end = time.monotonic() + timeout
    while True:
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack_from('<I', buf)[0]:
            n = struct.unpack_from('<I', buf)[0]; got.append(dec(buf[4:4 + n])[0]); buf = buf[4 + n:]
        left = end - time.monotonic()
        if got or left <= 0: return got
        r, _, _ = select.select([s], [], [], left)
        if r:
            c = s.recv(65536)
            if not c:
                out(ev='closed'); return got + [None]
            buf += c

pending = []
def until(pred, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not pending: pending.extend(frames(0.05))
        while pending:
            m = pending.pop(0)
            if m is None: return None
            if m.get('t') in ('err', 'bye'): out(ev=m['t'], code=m.get('code'), msg=m.get('msg'), reason=m.get('reason'))
            if pred(m): return m
    return None

w = until(lambda m: m.get('t') in ('welcome', 'err'))
if not w or w['t'] != 'welcome': sys.exit(1)
out(ev='welcome', slot=w.get('slot', 0))
seq = 0

def socket_acc(a, sz=4, write=False, v=None):
    global seq
    seq += 1
    m = {'t': 'acc', 'id': seq, 'sp': 'pio', 'a': a, 's': sz, 'd': 'w' if write else 'r'}
    if write: m['v'] = v
    s.sendall(frame(m))
    r = until(lambda m: m.get('t') == 'rep' and m.get('id') == seq)
    if r: out(ev='rep', via='socket', v=r.get('v'), e=r.get('e'))

req = 0
def slot_acc(a, sz=4, write=False, v=0):
    global req
    req += 1
    mem[32] = 0; mem[33] = sz; mem[34] = 1 if write else 0
    mem[36:40] = struct.pack('<I', 1); mem[40:48] = struct.pack('<Q', a); mem[48:56] = struct.pack('<Q', v)
    mem[4:8] = struct.pack('<I', req)
    if struct.unpack_from('<I', mem, 12)[0]:
        mem[12:16] = struct.pack('<I', 0); s.sendall(frame({'t': 'ring'}))
    end = time.monotonic() + 10
    while time.monotonic() < end and struct.unpack_from('<I', mem, 8)[0] != req:
        for m in frames(0.001):
            if m is None or m.get('t') == 'err':
                if m: out(ev='err', code=m.get('code'), msg=m.get('msg'))
                return
    out(ev='rep', via='slot', v=struct.unpack_from('<Q', mem, 56)[0], refused=struct.unpack_from('<I', mem, 64)[0])

if mode == 'truncate':
    for n in (0, 4096, 16384):
        try:
            os.ftruncate(fd, n); out(ev='ftruncate', size=n, errno=0)
        except OSError as e:
            out(ev='ftruncate', size=n, errno=e.errno)
    try:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE); out(ev='seal', errno=0)
    except OSError as e:
        out(ev='seal', errno=e.errno)
    try:
        os.posix_fallocate(fd, 0, 65536); out(ev='fallocate', errno=0)
    except OSError as e:
        out(ev='fallocate', errno=e.errno)
    slot_acc(0xc000)
    socket_acc(0xc000)
elif mode == 'slot-bigaddr': slot_acc(1 << 53)
elif mode == 'socket-bigaddr': socket_acc(1 << 53)
elif mode == 'slot-widevalue': slot_acc(0xc004, 1, True, 0x1ff)
elif mode == 'socket-widevalue': socket_acc(0xc004, 1, True, 0x1ff)
elif mode == 'ringflood':
    ring = frame({'t': 'ring'})
    for i in range(count // 1000):
        s.sendall(ring * 1000)
        if i == count // 2000: slot_acc(0xc000)  # one real doorbell amid the flood
    socket_acc(0xc000)
elif mode == 'accflood':
    s.sendall(b''.join(frame({'t': 'acc', 'id': 100000 + i, 'sp': 'pio', 'a': 0xc000, 's': 4, 'd': 'r'}) for i in range(count)))
    n = 0
    while n < count:
        got = until(lambda m: m.get('t') == 'rep')
        if not got: break
        n += 1
    out(ev='reps', n=n)
else:
    socket_acc(0xc000)
until(lambda m: False, 0.2)
s.sendall(frame({'t': 'bye'}))
until(lambda m: m is None, 2)
`;

interface Ev {
  ev: string;
  [k: string]: unknown;
}

describe('the access slot against hostile and broken peers', () => {
  let dir = '';
  let sup: Supervisor | null = null;
  let script = '';
  beforeAll(() => buildTrap()); // the supervisor's addon is built with the shim
  afterEach(async () => {
    await sup?.close();
    sup = null;
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(): Promise<string> {
    dir = mkdtempSync(join(tmpdir(), 'muxtrap-slot-hostile-'));
    script = join(dir, 'peer.py');
    writeFileSync(script, PEER_PY);
    const socket = join(dir, 'sock');
    const guests = ['p1', 'p2'].map((name) => ({ name, grants: [{ device: 'scr', shared: true }] })); // pass-through: both say so
    sup = new Supervisor({ config: parseConfig({ socket, devices: [{ id: 'scr', kind: 'scratch' }], guests }) });
    await sup.listen();
    return socket;
  }

  function peer(socket: string, mode: string, guest = 'p1', count = 0): Promise<{ code: number | null; events: Ev[]; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn('python3', [script, socket, mode, guest, String(count)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '', err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr: err, events: out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ev) }));
    });
  }

  const channel = (): Record<string, number> => sup!.stats().channel;

  it('keeps serving a peer that tries to shrink or grow its slot after the welcome: the seals refuse it (EPERM)', async () => {
    const socket = await start();
    const r = await peer(socket, 'truncate');
    expect(r.stderr).toBe('');
    expect(r.events[0]).toEqual({ ev: 'welcome', slot: 1 });
    expect(r.events.filter((e) => e.ev === 'ftruncate')).toEqual([0, 4096, 16384].map((size) => ({ ev: 'ftruncate', size, errno: 1 }))); // EPERM
    expect(r.events.find((e) => e.ev === 'seal')).toEqual({ ev: 'seal', errno: 1 }); // F_SEAL_SEAL: no more seals
    expect(r.events.find((e) => e.ev === 'fallocate')).toEqual({ ev: 'fallocate', errno: 1 }); // F_SEAL_GROW: posix_fallocate beyond the end
    // Served through the slot and then over the socket, after all that.
    expect(r.events.filter((e) => e.ev === 'rep')).toEqual([
      { ev: 'rep', via: 'slot', v: SCRATCH_ID, refused: 0 },
      { ev: 'rep', via: 'socket', v: SCRATCH_ID, e: null },
    ]);
    expect(r.code).toBe(0);
    expect(channel()).toMatchObject({ slotSessions: 1, slotAccesses: 1 });
    expect(sup!.stats().protocolErrors).toEqual({});
    // And the supervisor still serves another peer.
    const again = await peer(socket, 'truncate', 'p2');
    expect(again.events.filter((e) => e.ev === 'rep')).toHaveLength(2);
    // Each session's mapping goes when it ends (AccessSlot.close unmaps), not at some GC.
    // (vi.waitFor's default gives up after 1 s, a deadline a loaded machine can miss.)
    await vi.waitFor(() => expect(sup!.stats().guests.every((g) => !g.connected)).toBe(true), { timeout: 30_000 });
    expect(readFileSync('/proc/self/maps', 'latin1')).not.toContain('memfd:muxvisor-slot');
  });

  it.each([
    // Not even opened read-write: a file with a name (peer-cred.ts, native/shm open_peer_file).
    ['plain', 'a plain file', /\/proc\/\d+\/fd\/\d+ is a file with a name \(.*plain-slot, 1 link\), not a memfd/],
    ['unsealed', 'a memfd without seals', /memfd without the seals shrink, grow and seal/],
    ['noseal-seal', 'a memfd that may still be sealed further (no F_SEAL_SEAL)', /memfd without the seals shrink, grow and seal/],
    ['wrongsize', 'a sealed memfd of 4096 bytes', /memfd not of the announced size/],
    ['nofd', 'an fd number the peer does not have', /open \/proc\/\d+\/fd\/987: No such file or directory/],
  ])('refuses a slot that is %s (%s) and serves the peer over the socket', async (mode, _what, why) => {
    const socket = await start();
    const warnings: string[] = [];
    const log = (sup as unknown as { log: { warn: (o: Record<string, unknown>, m: string) => void } }).log;
    const warn = log.warn.bind(log);
    log.warn = (o, m) => (warnings.push(`${m}: ${String(o.err)}`), warn(o, m));
    const r = await peer(socket, mode);
    expect(r.stderr).toBe('');
    expect(r.events[0]).toEqual({ ev: 'welcome', slot: 0 });
    expect(r.events.filter((e) => e.ev === 'rep')).toEqual([{ ev: 'rep', via: 'socket', v: SCRATCH_ID, e: null }]);
    expect(r.code).toBe(0);
    expect(channel().slotRefused).toBe(1);
    expect(channel().slotSessions ?? 0).toBe(0);
    expect(warnings.filter((w) => w.startsWith('access slot refused'))).toHaveLength(1);
    expect(warnings.find((w) => w.startsWith('access slot refused'))).toMatch(why);
  });

  it.each([
    ['bigaddr', 'an address of 2^53', 'acc: field a is too large: 9007199254740992'],
    ['widevalue', 'a 1-byte write of 0x1ff', 'acc: value 511 does not fit 1 bytes'],
  ])('refuses a slot request with %s (%s) as it refuses such an `acc` frame', async (what, _desc, msg) => {
    const socket = await start();
    const viaSocket = await peer(socket, `socket-${what}`, 'p1');
    const viaSlot = await peer(socket, `slot-${what}`, 'p2');
    for (const r of [viaSocket, viaSlot]) {
      expect(r.events[0]).toEqual({ ev: 'welcome', slot: 1 });
      expect(r.events.find((e) => e.ev === 'err')).toMatchObject({ ev: 'err', code: 'malformed', msg });
      expect(r.events.filter((e) => e.ev === 'rep')).toEqual([]);
    }
    expect(sup!.stats().protocolErrors).toEqual({ malformed: 2 });
  });

  it('polls once per turn of the event loop however many doorbells ring, and not at all for a doorbell with nothing posted', async () => {
    const socket = await start();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5); // a timer of the supervisor's process: it still runs
    const rings = 20000;
    const r = await peer(socket, 'ringflood', 'p1', rings);
    clearInterval(timer);
    expect(r.stderr).toBe('');
    expect(r.events.filter((e) => e.ev === 'rep')).toEqual([
      { ev: 'rep', via: 'slot', v: SCRATCH_ID, refused: 0 },
      { ev: 'rep', via: 'socket', v: SCRATCH_ID, e: null },
    ]);
    const c = channel();
    // Its own rings and the one before its access (more when an answer took over 200 ms: the
    // shim rings again at each futex timeout, native/trap/slot.c).
    expect(c.slotRings).toBeGreaterThanOrEqual(rings + 1);
    expect(c.slotKicks).toBeGreaterThan(0);
    expect(c.slotKicks).toBeLessThan(rings / 10);
    expect(ticks).toBeGreaterThan(0);
  });

  it('polls once per turn of the event loop however many `acc` frames a slot peer sends', async () => {
    const socket = await start();
    const accs = 5000;
    const r = await peer(socket, 'accflood', 'p1', accs);
    expect(r.events).toContainEqual({ ev: 'reps', n: accs });
    const c = channel();
    expect(c.slotPeerFrames).toBe(accs);
    expect(c.slotKicks).toBeLessThan(accs / 10);
  });
});
