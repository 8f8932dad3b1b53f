// NBD client backend against a real nbdkit on a Unix socket.

import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendError } from '../src/backends/block.ts';
import { openNbdBackend, type NbdBackend } from '../src/backends/nbd.ts';
import { NBD_FLAG_SEND_FLUSH, NBD_FLAG_SEND_FUA } from '../src/backends/nbd/protocol.ts';
import { makeRig, pattern, firstDiff } from './helpers/ata-driver.ts';
import { startNbdkit, type NbdkitServer } from './helpers/nbd-server.ts';
import { missing, titled } from './helpers/requires.ts';

const noNbdkit = missing('nbdkit');

const servers: NbdkitServer[] = [];
const clients: NbdBackend[] = [];
async function serve(args: string[], tcpPort?: number): Promise<NbdkitServer> {
  const s = await startNbdkit(args, { tcpPort });
  servers.push(s);
  return s;
}
async function client(s: NbdkitServer): Promise<NbdBackend> {
  const c = await openNbdBackend({ socketPath: s.socket });
  clients.push(c);
  return c;
}
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await Promise.allSettled(servers.splice(0).map((s) => s.stop()));
});

/** An nbdkit eval export over a file whose flush fails while `failFlag` exists. */
function evalExport(img: string, failFlag: string, canFlush: boolean): string[] {
  return [
    'eval',
    `get_size=stat -c %s ${img}`,
    `pread=dd if=${img} skip=$4 count=$3 iflag=skip_bytes,count_bytes status=none`,
    `pwrite=dd of=${img} seek=$4 conv=notrunc oflag=seek_bytes status=none`,
    'can_write=exit 0',
    `can_flush=exit ${canFlush ? 0 : 3}`,
    `flush=if [ -e ${failFlag} ]; then echo "EIO injected flush failure" >&2; exit 1; fi`,
  ];
}

describe.skipIf(noNbdkit !== null)(titled('NBD backend (nbdkit)', noNbdkit), () => {
  it('negotiates size and flags, and round-trips pipelined reads and writes', async () => {
    const s = await serve(['memory', '16M']);
    const nbd = await client(s);
    expect(nbd.sectors).toBe(32768);
    expect(nbd.readOnly).toBe(false);
    expect(nbd.canTrim).toBe(true);
    expect(nbd.flags & (NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA)).toBe(NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA);
    // 40 writes in flight at once, then 40 reads in flight: replies are matched by cookie.
    await Promise.all(Array.from({ length: 40 }, (_, i) => nbd.write(i * 16, pattern(8, i), i % 2 === 0)));
    const back = await Promise.all(Array.from({ length: 40 }, (_, i) => nbd.read(i * 16, 8)));
    back.forEach((b, i) => expect(firstDiff(b, pattern(8, i))).toBe(-1));
    await nbd.flush();
    await nbd.trim(0, 8);
    expect(firstDiff(await nbd.read(0, 8), new Uint8Array(8 * 512))).toBe(-1);
    await expect(nbd.read(32767, 2)).rejects.toThrow(/outside the export/);
  });

  it('writes to a file export are in the file after flush', async () => {
    const s = await serve(['memory', '1M']); // just to get a temp dir with a lifetime
    const img = join(s.dir, 'disk.img');
    writeFileSync(img, new Uint8Array(2048 * 512));
    const f = await serve(['file', img]);
    const nbd = await client(f);
    await nbd.write(10, pattern(4, 2));
    await nbd.flush();
    expect(firstDiff(new Uint8Array(readFileSync(img).subarray(10 * 512, 14 * 512)), pattern(4, 2))).toBe(-1);
  });

  it('a read-only export refuses writes with a clear error and cannot trim', async () => {
    const s = await serve(['-r', 'memory', '1M']);
    const nbd = await client(s);
    expect(nbd.readOnly).toBe(true);
    expect(nbd.canTrim).toBe(false);
    await expect(nbd.write(0, new Uint8Array(512))).rejects.toThrow(/export is read-only/);
    await expect(nbd.trim(0, 1)).rejects.toThrow(/does not accept/);
    await nbd.flush(); // nothing to make durable
    expect(firstDiff(await nbd.read(0, 1), new Uint8Array(512))).toBe(-1);
  });

  it('without SEND_FLUSH a flush is a no-op; a server flush error is sticky', async () => {
    const tmp = await serve(['memory', '1M']);
    const img = join(tmp.dir, 'e.img');
    const flag = join(tmp.dir, 'fail-flush');
    writeFileSync(img, new Uint8Array(64 * 512));
    const noFlush = await client(await serve(evalExport(img, flag, false)));
    expect(noFlush.flags & NBD_FLAG_SEND_FLUSH).toBe(0);
    writeFileSync(flag, '');
    await noFlush.flush(); // no NBD_CMD_FLUSH sent, so the failing script never runs
    await noFlush.write(1, pattern(1, 1), true); // FUA not offered and no flush: plain write

    const withFlush = await client(await serve(evalExport(img, flag, true)));
    expect(withFlush.flags & NBD_FLAG_SEND_FLUSH).toBe(NBD_FLAG_SEND_FLUSH);
    await expect(withFlush.flush()).rejects.toThrow(/FLUSH .*EIO/);
    rmSync(flag); // the server would flush fine now, but the earlier failure stays
    expect(existsSync(flag)).toBe(false);
    await expect(withFlush.flush()).rejects.toThrow(/earlier flush failed/);
    expect(firstDiff(await withFlush.read(1, 1), pattern(1, 1))).toBe(-1);
  });

  it('a dropped connection fails pending and later requests with BackendError', async () => {
    const s = await serve(['--filter=delay', 'memory', '1M', 'rdelay=3']);
    const nbd = await client(s);
    const pending = expect(nbd.read(0, 1)).rejects.toBeInstanceOf(BackendError);
    await new Promise((r) => setTimeout(r, 100));
    await s.stop('SIGKILL');
    await pending;
    await expect(nbd.read(0, 1)).rejects.toThrow(/closed|lost/);
    await expect(nbd.flush()).rejects.toBeInstanceOf(BackendError);
  });

  it('refuses an export whose minimum block size exceeds a sector; honours its maximum', async () => {
    const big = await serve(['--filter=blocksize-policy', 'memory', '1M', 'blocksize-minimum=4096', 'blocksize-preferred=4096', 'blocksize-maximum=65536']);
    await expect(openNbdBackend({ socketPath: big.socket })).rejects.toThrow(/4096-byte aligned/);
    // Maximum 4 KiB: a 64 KiB read is split into 16 requests and reassembled in order.
    const small = await serve(['--filter=blocksize-policy', 'memory', '1M', 'blocksize-maximum=4096', 'blocksize-error-policy=error']);
    const nbd = await client(small);
    await nbd.write(0, pattern(128, 3));
    expect(firstDiff(await nbd.read(0, 128), pattern(128, 3))).toBe(-1);
  });

  it('works over TCP too', async () => {
    // A free port: try a few in case another process holds one.
    let s: NbdkitServer | undefined;
    for (let tries = 0; !s && tries < 5; tries++) s = await serve(['memory', '1M'], 20_000 + ((process.pid + tries) % 20_000)).catch(() => undefined);
    if (!s?.port) throw new Error('no free TCP port for nbdkit');
    const port = s.port;
    const nbd = await openNbdBackend({ host: '127.0.0.1', port });
    clients.push(nbd);
    expect(nbd.name).toBe(`nbd:tcp:127.0.0.1:${port}`);
    await nbd.write(5, pattern(2, 6));
    expect(firstDiff(await nbd.read(5, 2), pattern(2, 6))).toBe(-1);
  });

  it('an unknown export name is refused during the handshake', async () => {
    const s = await serve(['--filter=exportname', 'memory', '1M', 'exportname=disk0', 'exportname-strict=true']);
    await expect(openNbdBackend({ socketPath: s.socket, exportName: 'nope' })).rejects.toThrow(/refused/);
    const ok = await openNbdBackend({ socketPath: s.socket, exportName: 'disk0' });
    clients.push(ok);
    expect(ok.name).toMatch(/disk0$/);
  });

  it('serves the ATA model: PIO write, FLUSH CACHE, PIO read', async () => {
    const s = await serve(['memory', '4M']);
    const nbd = await client(s);
    const { drv } = makeRig(nbd);
    drv.issue28(0x30, 100, 3);
    await drv.pioOut(pattern(3, 5));
    expect((await drv.waitNotBusy()) & 0x01).toBe(0);
    drv.issue28(0xe7, 0, 0);
    expect((await drv.waitNotBusy()) & 0x01).toBe(0);
    drv.issue28(0x20, 100, 3);
    expect(firstDiff(await drv.pioIn(3), pattern(3, 5))).toBe(-1);
  });
});

describe('NBD handshake against a broken server', () => {
  it('a server that accepts but never speaks fails the handshake by its deadline', async () => {
    const { createServer } = await import('node:net');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'mv-nbd-mute-'));
    const path = join(dir, 'mute.sock');
    const held: import('node:net').Socket[] = [];
    const server = createServer((s) => held.push(s));
    await new Promise<void>((r) => server.listen(path, r));
    try {
      await expect(openNbdBackend({ socketPath: path, timeoutMs: 200 })).rejects.toThrow(/no handshake within 200 ms/);
      // A server that is not NBD at all.
      held.length = 0;
      server.removeAllListeners('connection');
      server.on('connection', (s) => s.end(Buffer.from('HTTP/1.0 400 Bad Request\r\n\r\n')));
      // Its answer comes at once; a deadline a loaded machine cannot miss keeps it the error.
      await expect(openNbdBackend({ socketPath: path, timeoutMs: 30_000 })).rejects.toThrow(/not an NBD server/);
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
