// `muxvisor run <config>`: validate the config, start the supervisor on its socket, run
// until SIGINT/SIGTERM, then close cleanly (peers get `bye`, devices are closed).

import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../config/load.ts';
import { DeviceRegistry } from '../devices/registry.ts';
import { Supervisor, parseEndpoint } from '../supervisor.ts';
import { MuxConfigError, muxRouterFactory } from '../mux/router-factory.ts';
import { launchGuests } from '../launch/guests.ts';
import { cliLogger, globalOptions, printJson } from './common.ts';
import { AccessLog } from '../log/access-log.ts';

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export function register(program: Command): void {
  program
    .command('run')
    .description('validate a configuration, start the supervisor on its socket, run until SIGINT/SIGTERM')
    .argument('<config>', 'configuration file (JSON, see src/config/muxvisor.schema.json)')
    .option('--socket <path>', 'listen here instead of the configured socket ("tcp:HOST:PORT" for TCP)')
    .option('--exit-when-done', 'exit when every guest the config starts (`run`) has finished: status 0 when all succeeded', false)
    .option('--access-log <file>', 'record every access and MUX event (.jsonl: JSON lines, .mpk: msgpack; see muxvisor log)')
    .action(async (configPath: string, opts: { socket?: string; exitWhenDone: boolean; accessLog?: string }, cmd: Command) => {
      const { json } = globalOptions(cmd);
      const log = cliLogger(cmd);
      const registry = new DeviceRegistry();
      const config = await loadConfig(configPath, { knownKinds: registry.kinds() });
      if (opts.socket) config.socket = opts.socket;
      // A MUX for every device whose kind has a machine in machines/; pass-through otherwise.
      const accessLog = opts.accessLog !== undefined ? new AccessLog(opts.accessLog) : undefined;
      const createRouter = await muxRouterFactory(config, { logger: log, recorder: accessLog }).catch((e: unknown) => {
        // A bad policy or machine is a configuration error: name the file with the JSON paths.
        throw e instanceof MuxConfigError ? new ConfigError(configPath, e.issues) : e;
      });
      // A guest that connects by itself must name its credential (`auth`); the guests started
      // here are known by the one-time token each is handed (launch.ts).
      const supervisor = new Supervisor({ config, logger: log, registry, createRouter, configSource: configPath, defaultAuth: null, accessLog });
      const signal = waitForSignal();
      if (accessLog) {
        await supervisor.start();
        await accessLog.start(supervisor);
      }
      const addr = await supervisor.listen(parseEndpoint(config.socket));
      const where = typeof addr === 'string' ? addr : `tcp:${addr.address}:${addr.port}`;
      log.info({ config: configPath, socket: where, guests: supervisor.guestNames() }, 'muxvisor running; SIGINT or SIGTERM stops it');
      if (json) printJson({ event: 'listening', socket: where, devices: supervisor.layout(), guests: supervisor.guestNames() }, true);
      // The guests the config starts itself (scripted drivers, trapped programs, KVM guests).
      const launched = await launchGuests(supervisor, config, typeof addr === 'string' ? addr : config.socket, log);
      for (const l of launched) void l.done.then((o) => json && printJson({ event: 'guest', ...o }, true));
      const allDone = Promise.all(launched.map((l) => l.done));
      const ended = opts.exitWhenDone && launched.length > 0 ? await Promise.race([signal, allDone]) : await signal;
      const sig: NodeJS.Signals | 'done' = Array.isArray(ended) ? 'done' : ended;
      for (const l of launched) l.stop();
      const outcomes = await allDone;
      log.info({ signal: sig }, 'stopping');
      const stats = supervisor.stats();
      await supervisor.close();
      await accessLog?.close();
      if (json) printJson({ event: 'stopped', signal: sig, stats }, true);
      log.info('stopped');
      process.exitCode = sig === 'done' && outcomes.some((o) => !o.ok) ? 1 : 0;
    });
}
