// A minimal client of QEMU's machine protocol (QMP, docs/interop/qmp-spec): JSON objects one
// per line; after the greeting and `qmp_capabilities`, each `execute` gets a `return` or an
// `error`, in order; `event` objects may come in between. qtest cannot reset a machine, QMP's
// `system_reset` can: the generic qemu kind uses it for a device's power-on reset.

import { connect, type Socket } from 'node:net';
import { QtestError } from './qtest.ts';

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export class QmpClient {
  private rx = '';
  private readonly pending: Pending[] = [];
  private readonly waiters: Array<{ event: string; resolve: () => void }> = [];
  private greeted: Promise<void>;
  private closed = false;

  private constructor(private readonly socket: Socket) {
    let greet!: () => void;
    this.greeted = new Promise((resolve) => (greet = resolve));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.rx += chunk;
      let nl: number;
      while ((nl = this.rx.indexOf('\n')) >= 0) {
        const line = this.rx.slice(0, nl).trim();
        this.rx = this.rx.slice(nl + 1);
        if (line) this.onMessage(line, greet);
      }
    });
    socket.on('error', () => {
      // 'close' follows and fails what is pending.
    });
    socket.on('close', () => {
      this.closed = true;
      for (const p of this.pending.splice(0)) p.reject(new QtestError(`qmp: connection closed; '${p.command}' not answered`));
    });
  }

  /** Connect to a QMP unix socket (QEMU's `-qmp unix:PATH,server=on,wait=off`) and negotiate. */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path);
      const timer = setTimeout(() => (s.destroy(), reject(new QtestError(`qmp: no connection to ${path} within ${timeoutMs} ms`))), timeoutMs);
      s.once('connect', () => (clearTimeout(timer), resolve(s)));
      s.once('error', (err) => (clearTimeout(timer), reject(new QtestError(`qmp: cannot connect to ${path}: ${err.message}`))));
    });
    const client = new QmpClient(socket);
    await client.greeted;
    await client.execute('qmp_capabilities');
    return client;
  }

  /** Run one command; resolves with its `return` value. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closed) return Promise.reject(new QtestError(`qmp: closed; '${command}' not sent`));
    return new Promise((resolve, reject) => {
      this.pending.push({ command, resolve, reject });
      this.socket.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + '\n');
    });
  }

  /** Resolves at the next `event` of this name (register before causing it). */
  nextEvent(event: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const w = { event, resolve: () => (clearTimeout(timer), resolve()) };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new QtestError(`qmp: no ${event} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private onMessage(line: string, greet: () => void): void {
    let msg: { QMP?: unknown; return?: unknown; error?: { class?: string; desc?: string }; event?: string };
    try {
      msg = JSON.parse(line);
    } catch {
      return; // QEMU writes JSON only; a torn line cannot be answered to anyone
    }
    if (msg.QMP !== undefined) return greet();
    if (msg.event !== undefined) {
      for (const w of this.waiters.filter((x) => x.event === msg.event)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
      return;
    }
    const p = this.pending.shift();
    if (!p) return;
    if (msg.error) p.reject(new QtestError(`qmp: '${p.command}' failed: ${msg.error.class ?? 'error'}: ${msg.error.desc ?? ''}`));
    else p.resolve(msg.return);
  }
}
