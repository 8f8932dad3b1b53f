// The package as a user gets it: `npm pack` the project (prepack compiles dist/), install the
// tarball into a fresh folder outside the repository, and there
//   - run a user's TypeScript machine, ES-module policy and CommonJS device model, each
//     importing muxvisor/define, muxvisor/policy or muxvisor/device (and xstate), through the
//     installed CLI: check-machine, check-policy, and `run --exit-when-done` on a config using all three;
//   - use the programmatic API from plain Node (the compiled dist/, no tsx): ESM import and
//     CommonJS require, a supervisor with the shipped ATA machine;
//   - type-check the user's TypeScript, and the `init` templates, against the shipped declarations.
// Slow (pack, install, compile): up to about two minutes on a loaded machine.
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { onPath, titled } from './helpers/requires.ts';

const ROOT = resolve('.');
const why = onPath('npm') ? null : 'npm not on PATH (it comes with Node.js): npm pack is impossible';
const work = mkdtempSync(join(tmpdir(), 'muxvisor-pkg-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const user = join(work, 'user-project');

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run a program to its end (asynchronously: a blocked worker loses vitest's heartbeat). */
function run(cmd: string, args: string[], cwd: string, timeout = 150_000): Promise<Ran> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd, timeout, env: { ...process.env, npm_config_update_notifier: 'false' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', fail);
    child.on('close', (status) => done({ status, stdout, stderr }));
  });
}
const show = (r: Ran) => `exit ${r.status}\n${r.stdout}\n${r.stderr}`;

const MACHINE_TS = `// A user's machine in TypeScript: the tally device's protocol, safe between transactions.
import { setup } from 'xstate';
import { defineMux, type MuxAccess } from 'muxvisor/define';

export default defineMux({
  kind: 'tally',
  registers: {
    CMD: { region: 'regs', offset: 0, width: 1, access: 'w' },
    STATUS: { region: 'regs', offset: 1, width: 1, access: 'r' },
  },
  machine: setup({ types: { events: {} as { type: 'BEGIN' } | { type: 'END' } | { type: 'RESET' } } }).createMachine({
    id: 'tally',
    initial: 'idle',
    on: { RESET: '.idle' },
    states: { idle: { tags: ['safe'], on: { BEGIN: 'open' } }, open: { on: { END: 'idle' } } },
  }),
  classify: (a: MuxAccess, v: number): string | null =>
    a.reg?.name === 'CMD' && a.dir === 'write' ? (v === 1 ? 'BEGIN' : v === 2 ? 'END' : v === 0 ? 'RESET' : null) : null,
  reset: { writes: [{ reg: 'CMD', value: 0 }] },
  deadlineNs: 2_000_000_000, // generous: the guests share a loaded machine's CPU with the other steps
});
`;

const POLICY_MJS = `// A user's policy as a JavaScript ES module.
import { durationNs, policyOptions } from 'muxvisor/policy';

export default function create(options = {}) {
  const quantumNs = policyOptions('my-policy', { quantumNs: durationNs.optional() }, options).quantumNs ?? 300000;
  return {
    name: 'my-policy',
    fairness: 'equal',
    pick(view) {
      return view.owner && view.owner.heldNs < quantumNs ? view.owner.id : view.waiting[0].id;
    },
  };
}
`;

const DEVICE_CJS = `// A user's device model in CommonJS: the tally register file at 0x300-0x303.
const { kindInfoFromDevice } = require('muxvisor/device');

const REGIONS = [{ name: 'regs', space: 'pio', size: 4, legacyBase: 0x300 }];

function create(ctx) {
  let busy = false;
  let sum = 0;
  return {
    describe: () => ({ kind: ctx.kind, regions: REGIONS, properties: [] }),
    read: (_r, off) => (off === 1 ? (busy ? 1 : 0) : off === 3 ? sum : 0xff),
    write(_r, off, _size, v) {
      if (off === 0) {
        if (v === 1) [busy, sum] = [true, 0];
        else if (v === 2) busy = false;
        else if (v === 0) [busy, sum] = [false, 0];
      } else if (off === 2 && busy) sum = (sum + v) & 0xff;
    },
    reset() {
      busy = false;
      sum = 0;
    },
    metrics: () => ({}),
  };
}

module.exports = create;
module.exports.kindInfo = { ...kindInfoFromDevice('tally', create({ kind: 'tally' }).describe()), summary: 'a transaction register file' };
`;

const CONFIG = {
  socket: './mv.sock',
  devices: [{ id: 't0', kind: 'tally', model: './my-device.cjs', mux: { machine: './my-machine.ts' }, policy: { module: './my-policy.mjs' } }],
  guests: ['g1', 'g2'].map((name) => ({ name, run: { type: 'scripted', driver: './tally-driver.mjs', options: { rounds: 20 } }, grants: [{ device: 't0' }] })),
};

// Plain Node, the compiled API: a disk in memory under the shipped ATA machine.
const API_MJS = `import { loadConfig, muxRouterFactory, Supervisor } from 'muxvisor';
import { defineMux } from 'muxvisor/define';
import { writeFileSync } from 'node:fs';
writeFileSync('api.json', JSON.stringify({ socket: './api.sock', devices: [{ id: 'disk', kind: 'ata', backend: { type: 'memory', sizeMiB: 1 } }], guests: [{ name: 'g', grants: [{ device: 'disk' }] }] }));
const config = await loadConfig('api.json');
const engines = [];
const sup = new Supervisor({ config, createRouter: await muxRouterFactory(config, { onEngine: (id) => engines.push(id) }) });
await sup.start();
const g = sup.attachLocalGuest('g');
const status = Number((await g.access({ space: 'pio', addr: 0x1f7, size: 1, dir: 'read' })).value);
const stats = sup.stats();
await sup.close();
console.log(JSON.stringify({ engines, status, defineMux: typeof defineMux, stats: typeof stats }));
`;

const TSCONFIG = { compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] }, files: ['my-machine.ts', 'typed-device.ts', 'tpl-device.ts', 'tpl-machine.ts', 'tpl-policy.ts'] };
const TYPED_DEVICE_TS = `import type { Device, DeviceContext, KindInfo } from 'muxvisor/device';
import type { Policy } from 'muxvisor/policy';
import { type Config, Supervisor } from 'muxvisor';
export const kindInfo: KindInfo = { kind: 'k', summary: 's', backend: null, pci: null, regions: [], irqs: [], properties: [] };
export default (ctx: DeviceContext): Device => ({ describe: () => ({ kind: ctx.kind, regions: [], properties: [] }), read: () => 0, write: () => undefined, reset: () => undefined, metrics: () => ({}) });
export const p: Policy = { name: 'p', fairness: 'none', pick: (v) => v.waiting[0].id };
export const make = (config: Config) => new Supervisor({ config });
`;

describe.skipIf(why !== null)(titled('the packed package installed in a fresh folder', why), () => {
  it('npm pack, npm install the tarball, then a user\'s TS machine, ESM policy and CommonJS device run through the installed CLI and the API runs on plain Node', { timeout: 240_000 }, async () => {
    const pack = await run('npm', ['pack', '--pack-destination', work, '--silent'], ROOT);
    expect(pack.status, show(pack)).toBe(0);
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tarball, show(pack)).toBeDefined();

    mkdirSync(user);
    // No "type": a .js here would be CommonJS; .ts and .mjs files are ES modules by their own say.
    writeFileSync(join(user, 'package.json'), JSON.stringify({ name: 'user-project', private: true }));
    const install = await run('npm', ['install', join(work, tarball!), '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], user);
    expect(install.status, show(install)).toBe(0);

    writeFileSync(join(user, 'my-machine.ts'), MACHINE_TS);
    writeFileSync(join(user, 'my-policy.mjs'), POLICY_MJS);
    writeFileSync(join(user, 'my-device.cjs'), DEVICE_CJS);
    copyFileSync('test/fixtures/user-package/tally-driver.mjs', join(user, 'tally-driver.mjs'));
    writeFileSync(join(user, 'muxvisor.json'), JSON.stringify(CONFIG));

    writeFileSync(join(user, 'api.mjs'), API_MJS);
    writeFileSync(join(user, 'typed-device.ts'), TYPED_DEVICE_TS);
    writeFileSync(join(user, 'tsconfig.json'), JSON.stringify(TSCONFIG));
    // The user's @types/node (and its undici-types): the repository's copies stand in for an install.
    for (const dep of ['@types/node', 'undici-types']) cpSync(join(ROOT, 'node_modules', dep), join(user, 'node_modules', dep), { recursive: true });

    // Independent steps at once (on a loaded machine, more processes get more of the CPU).
    const bin = join(user, 'node_modules/.bin/muxvisor');
    const [machine, policy, served, api, cjs, tsc] = await Promise.all([
      run('npx', ['--no-install', 'muxvisor', 'check-machine', './my-machine.ts'], user),
      run(bin, ['check-policy', './my-policy.mjs', '--runs', '5'], user),
      run(bin, ['run', 'muxvisor.json', '--exit-when-done'], user),
      run(process.execPath, ['api.mjs'], user),
      run(process.execPath, ['-e', "const d = require('muxvisor/define'); const p = require('muxvisor/policy'); console.log(typeof d.defineMux, typeof p.policyOptions)"], user),
      // The init templates, written by the installed CLI, type-check against the declarations too.
      Promise.all(['device', 'machine', 'policy'].map((what) => run(bin, ['init', what, `tpl-${what}`], user))).then((inits) => {
        for (const init of inits) expect(init.status, show(init)).toBe(0);
        return run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', '.'], user);
      }),
    ]);
    expect(machine.stdout, show(machine)).toMatch(/^ok: a safe state exists/m);
    expect(machine.status).toBe(0);

    expect(policy.stdout, show(policy)).toContain('policy "my-policy"');
    expect(policy.stdout, show(policy)).toMatch(/^ok: safety/m);
    expect(policy.status).toBe(0);

    expect(served.stderr.match(/"how":"scripted","ok":true,"detail":"20 transactions, sums right"/g), show(served)).toHaveLength(2);
    expect(served.status).toBe(0);

    expect(api.status, show(api)).toBe(0);
    expect(JSON.parse(api.stdout)).toMatchObject({ engines: ['disk'], defineMux: 'function', stats: 'object' });
    expect(cjs.stdout.trim(), show(cjs)).toBe('function function');

    expect(tsc.stdout + tsc.stderr, show(tsc)).toBe('');
    expect(tsc.status).toBe(0);
  });
});
