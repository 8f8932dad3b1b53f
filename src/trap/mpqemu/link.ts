// One end of a multi-process protocol socket: messages are framed by the addon on Node's
// loop, decoded and validated here, and handed on one at a time. Every descriptor a
// message brought is the handler's to keep or close; those of a malformed message are
// closed here before the error is reported.

import { getSystemErrorName } from 'node:util';
import { decodeMessage, encodeMessage, MpqemuMalformed, peekHeader, cmdName, type MpqemuMessage } from './codec.ts';
import { FLAG_CTRUNC, FLAG_FDS_IN_BODY, mpqemuAddon, type MpqemuAddon, WATCH_EOF, WATCH_MESSAGE, WATCH_OVERSIZE, WATCH_TRUNCATED, type WatchHandle } from './native.ts';

/** A host failure on the socket (recvmsg/sendmsg errors): not the peer's protocol mistake. */
export class MpqemuLinkError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'MpqemuLinkError';
  }
}

export interface LinkHandlers {
  /** A valid message; `raw` is its bytes as received. */
  message(msg: MpqemuMessage, raw: Buffer): void;
  /** The peer broke the protocol; the link stopped reading (close it). */
  malformed(err: MpqemuMalformed, raw: Buffer | null): void;
  /** The peer closed at a message boundary, or the socket failed; the link stopped reading. */
  end(err: MpqemuLinkError | null): void;
}

export class MpqemuLink {
  private readonly addon: MpqemuAddon;
  private readonly handle: WatchHandle;
  private closed = false;
  private paused = false;

  /** Takes ownership of `fd` (closed by close()). */
  constructor(
    readonly fd: number,
    private readonly handlers: LinkHandlers,
  ) {
    this.addon = mpqemuAddon();
    this.handle = this.addon.watch(fd, (status, bytes, fds, flags) => this.onFrame(status, bytes, fds, flags));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends one message; throws MpqemuLinkError when the socket refuses it. */
  send(msg: MpqemuMessage): void {
    const { bytes, fds } = encodeMessage(msg);
    this.sendRaw(bytes, fds);
  }

  /** Sends bytes as they are (a relay forwards what it received; tests send garbage). */
  sendRaw(bytes: Buffer, fds: readonly number[] = []): void {
    if (this.closed) throw new MpqemuLinkError('mpqemu: send on a closed link');
    try {
      this.addon.send(this.fd, bytes, fds as number[]); // read only by the addon
    } catch (err) {
      const e = err as Error & { code?: string };
      throw new MpqemuLinkError(`mpqemu: ${e.message}`, e.code);
    }
  }

  /** Stops reading (a request is being served asynchronously); the peer waits in the socket. */
  pause(): void {
    if (this.closed || this.paused) return;
    this.paused = true;
    this.addon.pause(this.handle, true);
  }

  resume(): void {
    if (this.closed || !this.paused) return;
    this.paused = false;
    this.addon.pause(this.handle, false);
  }

  /** Stops watching and closes the socket; the peer sees EOF. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.unwatch(this.handle);
  }

  private closeFds(fds: readonly number[]): void {
    for (const fd of fds) this.addon.close(fd);
  }

  private onFrame(status: number, bytes: Buffer | null, fds: number[], flags: number): void {
    if (status === WATCH_MESSAGE && bytes) {
      let msg: MpqemuMessage;
      try {
        msg = decodeMessage({ bytes, fds, ctrunc: (flags & FLAG_CTRUNC) !== 0, fdsInBody: (flags & FLAG_FDS_IN_BODY) !== 0 });
      } catch (err) {
        this.closeFds(fds);
        if (!(err instanceof MpqemuMalformed)) throw err;
        return this.handlers.malformed(err, bytes);
      }
      return this.handlers.message(msg, bytes);
    }
    this.closeFds(fds);
    if (status === WATCH_EOF) return this.handlers.end(null);
    if (status === WATCH_TRUNCATED) return this.handlers.malformed(new MpqemuMalformed('truncated', 'the peer closed in the middle of a message'), null);
    if (status === WATCH_OVERSIZE && bytes) {
      const { cmd, size } = peekHeader(bytes);
      return this.handlers.malformed(new MpqemuMalformed('bad-size', `${cmdName(cmd)}: body of ${size} bytes, more than any message has`), bytes);
    }
    const code = getSystemErrorName(status); // status is -errno here
    this.handlers.end(new MpqemuLinkError(`mpqemu: recvmsg: ${code}`, code));
  }
}
