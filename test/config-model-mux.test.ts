// devices[].model (a user's device model module) and devices[].mux {machine, deadlineNs}: the
// schema takes them, paths resolve against the config file's folder, mistakes name their JSON
// path, and the supervisor builds the user's device and the MUX with that machine and deadline.
// The deprecated properties.machine still works, with a warning.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, configJsonSchema, loadConfig, muxRouterFactory, parseConfig, Supervisor } from '../src/api/index.ts';
import { TEMPLATES } from '../src/cli/init-templates.ts';

const dir = mkdtempSync(join(tmpdir(), 'muxvisor-model-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'tally.ts'), TEMPLATES.device('tally'));
writeFileSync(join(dir, 'tally-mux.ts'), TEMPLATES.machine('tally-mux'));
// The same model as CommonJS: module.exports with default and kindInfo.
writeFileSync(
  join(dir, 'echo.cjs'),
  `let v = 0;
module.exports = { kindInfo: { kind: 'x', summary: 'one register', backend: null, pci: null, regions: [{ name: 'r', space: 'pio', size: 1, legacyBase: 0x310 }], irqs: [], properties: [] },
  default: (ctx) => ({ describe: () => ({ kind: ctx.kind, regions: module.exports.kindInfo.regions, properties: [] }), read: () => v, write: (_r, _o, _s, x) => { v = x ^ 0xff; }, reset: () => { v = 0; }, metrics: () => ({}) }) };
`,
);
writeFileSync(join(dir, 'not-a-model.mjs'), 'export const x = 1;\n');

function configFile(name: string, devices: unknown[], guests: unknown[] = []): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify({ socket: `${name}.sock`, devices, guests }));
  return file;
}

const issuesOf = (f: () => unknown): string[] => {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
};

describe('devices[].model and devices[].mux in the schema', () => {
  it('parses them; a device with a model may name a kind no built-in has; mistakes name the JSON path', () => {
    const c = parseConfig({ devices: [{ id: 'd', kind: 'tally', model: './tally.ts', mux: { machine: './m.ts', deadlineNs: 5e6 } }] }, '<t>', { knownKinds: ['ata'], baseDir: '/cfg' });
    expect(c.devices[0]).toMatchObject({ model: '/cfg/tally.ts', mux: { machine: '/cfg/m.ts', deadlineNs: 5e6 } });
    expect(parseConfig({ devices: [{ id: 'd', kind: 'ata', mux: { machine: 'ata' } }] }, '<t>', { baseDir: '/cfg' }).devices[0].mux?.machine).toBe('ata');
    expect(issuesOf(() => parseConfig({ devices: [{ id: 'd', kind: 'tally' }] }, '<t>', { knownKinds: ['ata'] }))).toEqual(['devices[0].kind: unknown device kind "tally"; known kinds: ata']);
    expect(issuesOf(() => parseConfig({ devices: [{ id: 'd', kind: 'ata', mux: { deadlineNs: 0 } }] }))[0]).toMatch(/^devices\[0\]\.mux\.deadlineNs: /);
    expect(issuesOf(() => parseConfig({ devices: [{ id: 'd', kind: 'ata', mux: { machin: 'ata' } }] }))).toEqual(['devices[0].mux: unknown field "machin" (did you mean "machine"?)']);
    expect(issuesOf(() => parseConfig({ devices: [{ id: 'd', kind: 'ata', mux: { machine: 'ata' }, properties: { machine: 'sim' } }] }))).toEqual([
      'devices[0].properties.machine: give it once, as mux.machine (properties.machine is the deprecated spelling)',
    ]);
  });

  it('the generated JSON schema describes model and mux', () => {
    const device = (configJsonSchema() as { properties: { devices: { items: { properties: Record<string, { description?: string; properties?: object }> } } } }).properties.devices.items.properties;
    expect(device.model.description).toMatch(/default export is a factory/);
    expect(Object.keys(device.mux.properties ?? {})).toEqual(['machine', 'deadlineNs']);
  });

  it('loadConfig resolves them against the file\'s folder and names a missing module', async () => {
    const ok = await loadConfig(configFile('ok.json', [{ id: 'd', kind: 'tally', model: './tally.ts', mux: { machine: './tally-mux.ts' } }]));
    expect(ok.devices[0]).toMatchObject({ model: join(dir, 'tally.ts'), mux: { machine: join(dir, 'tally-mux.ts') } });
    const missing = loadConfig(configFile('missing.json', [{ id: 'd', kind: 'tally', model: './nope.ts', mux: { machine: './nope-mux.ts' } }]));
    await expect(missing).rejects.toThrow(`devices[0].model: no such file: ${join(dir, 'nope.ts')}`);
    await expect(missing).rejects.toThrow('devices[0].mux.machine: no shipped machine');
  });
});

describe('the supervisor with a user\'s device model', () => {
  it('builds a CommonJS model like a built-in kind and routes a guest to it', async () => {
    const config = await loadConfig(configFile('echo.json', [{ id: 'e', kind: 'echo', model: './echo.cjs' }], [{ name: 'g', grants: [{ device: 'e' }] }]));
    const sup = new Supervisor({ config, createRouter: await muxRouterFactory(config) });
    await sup.start();
    try {
      expect(sup.layout()).toEqual([{ id: 'e', kind: 'echo', regions: [{ name: 'r', space: 'pio', start: 0x310, end: 0x310 }], irq: undefined, pci: undefined }]);
      const g = sup.attachLocalGuest('g');
      await g.access({ space: 'pio', addr: 0x310, size: 1, dir: 'write', value: 0x0f });
      expect(Number((await g.access({ space: 'pio', addr: 0x310, size: 1, dir: 'read' })).value)).toBe(0xf0);
    } finally {
      await sup.close();
    }
  });

  it('a module without a default-exported factory is an error naming devices[i].model', async () => {
    const config = await loadConfig(configFile('bad.json', [{ id: 'b', kind: 'bad', model: './not-a-model.mjs' }]));
    const sup = new Supervisor({ config });
    await expect(sup.start()).rejects.toThrow(`devices[0].model: ${join(dir, 'not-a-model.mjs')}: a device model module must default-export a factory`);
  });

  it('mux.machine and mux.deadlineNs make the MUX: the watchdog cuts off an owner stuck mid-transaction after that deadline', async () => {
    const config = await loadConfig(
      configFile('mux.json', [{ id: 't', kind: 'tally', model: './tally.ts', mux: { machine: './tally-mux.ts', deadlineNs: 2_000_000 } }], [
        { name: 'g1', grants: [{ device: 't' }] },
        { name: 'g2', grants: [{ device: 't' }] },
      ]),
    );
    const sup = new Supervisor({ config, createRouter: await muxRouterFactory(config) });
    await sup.start();
    try {
      const [g1, g2] = [sup.attachLocalGuest('g1'), sup.attachLocalGuest('g2')];
      const resets: string[] = [];
      g1.onReset((dev, why) => resets.push(`${dev}: ${why}`));
      await g1.access({ space: 'pio', addr: 0x300, size: 1, dir: 'write', value: 1 }); // BEGIN, never END
      // g2 waits for the device; only the watchdog can hand it over.
      await g2.access({ space: 'pio', addr: 0x300, size: 1, dir: 'write', value: 1 });
      expect(Number((await g2.access({ space: 'pio', addr: 0x301, size: 1, dir: 'read' })).value)).toBe(1);
      expect(resets.join('\n')).toMatch(/^t: .*longer than 2000000 ns/);
    } finally {
      await sup.close();
    }
  });

  it('properties.machine still works through `muxvisor run`, with a deprecation warning', () => {
    const file = configFile('old.json', [{ id: 't', kind: 'tally', model: './tally.ts', properties: { machine: './tally-mux.ts' } }], [
      { name: 'g1', run: { type: 'scripted', driver: resolve('test/fixtures/user-package/tally-driver.mjs'), options: { rounds: 5 } }, grants: [{ device: 't' }] },
      { name: 'g2', run: { type: 'scripted', driver: resolve('test/fixtures/user-package/tally-driver.mjs'), options: { rounds: 5 } }, grants: [{ device: 't' }] },
    ]);
    const r = spawnSync(process.execPath, ['src/bin/muxvisor.mjs', 'run', file, '--exit-when-done'], { encoding: 'utf8' });
    expect(r.stderr).toContain('devices[0].properties.machine is deprecated: write it as devices[0].mux.machine');
    expect(r.stderr.match(/"ok":true,"detail":"5 transactions, sums right"/g)).toHaveLength(2);
    expect(r.status).toBe(0);
  });
});
