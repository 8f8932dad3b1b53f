import { describe, expect, it, onTestFinished } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseConfig } from '../src/config/load.ts';
import { SCHEMA_FILE, schemaFileText } from '../src/config/generate-schema.ts';

const good = {
  devices: [
    { id: 'ide0', kind: 'ata', backend: { type: 'file', path: 'disk.img', sizeMiB: 8 }, policy: { name: 'round-robin' } },
    { id: 'scr', kind: 'scratch', map: { regs: '0xc000' }, pci: { slot: 3 } },
  ],
  guests: [
    { name: 'a', grants: [{ device: 'ide0', window: { startLba: 0, sectors: 1024 } }, { irq: 14 }] },
    { name: 'b', weight: 2, grants: [{ space: 'pio', start: '0x1f0', end: 503 }], run: { type: 'scripted', driver: 'drivers/ata.ts' } },
  ],
};

function issuesOf(value: unknown, knownKinds?: string[]): string[] {
  try {
    parseConfig(value, 'x.json', { knownKinds });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('expected a ConfigError');
}

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x));

describe('config', () => {
  it('accepts a good config, parses addresses and fills defaults', () => {
    const c = parseConfig(good);
    expect(c.socket).toBe('./muxvisor.sock');
    expect(c.devices[1].map).toEqual({ regs: 0xc000 });
    expect(c.devices[1].pci).toEqual({ slot: 3, function: 0 });
    expect(c.devices[0].properties).toEqual({});
    expect(c.guests[0].weight).toBe(1);
    expect(c.guests[0].priority).toBe(0);
    expect(c.guests[1].grants[0]).toEqual({ space: 'pio', start: 0x1f0, end: 0x1f7 });
  });

  it('names the JSON path of a reversed range', () => {
    const c = clone(good) as any;
    c.guests[1].grants[0] = { space: 'pio', start: '0x1f7', end: '0x1f0' };
    expect(issuesOf(c)).toEqual(['guests[1].grants[0]: end 0x1f0 is before start 0x1f7']);
  });

  it('names the path of wrong types, unknown fields and bad addresses', () => {
    const c = clone(good) as any;
    c.guests[0].weight = 'heavy';
    c.devices[0].backend.sizeMib = 8;
    c.guests[1].grants[0].start = '0xZZ';
    const issues = issuesOf(c);
    expect(issues).toContainEqual(expect.stringMatching(/^guests\[0\]\.weight: .*expected number/));
    expect(issues).toContainEqual('devices[0].backend: unknown field "sizeMib" (did you mean "sizeMiB"?)');
    expect(issues).toContainEqual(expect.stringMatching(/^guests\[1\]\.grants\[0\]\.start: expected an address/));
  });

  it('reports the closest union branch of a grant', () => {
    const c = clone(good) as any;
    c.guests[0].grants[0] = { device: 'ide0', windw: {} };
    expect(issuesOf(c)).toEqual(['guests[0].grants[0]: unknown field "windw" (did you mean "window"?)']);
    c.guests[0].grants[0] = { device: 'ide0', window: { startLba: -1, sectors: 1 } };
    expect(issuesOf(c)[0]).toMatch(/^guests\[0\]\.grants\[0\]\.window\.startLba: /);
  });

  it('cross-checks device ids, guest names, kinds, pci slots and policies', () => {
    const c = clone(good) as any;
    c.guests[1].grants.push({ device: 'nic9' });
    c.guests.push({ name: 'a' });
    c.devices.push({ id: 'ide0', kind: 'ata', pci: { slot: 3 }, policy: { name: 'x', module: 'y.ts' } });
    expect(issuesOf(c, ['ata', 'scratch'])).toEqual([
      'devices[2].id: duplicate device id "ide0" (also devices[0])',
      'devices[2].policy: expected exactly one of "name" or "module"',
      'devices[2].pci: PCI slot 3 function 0 is already used by "scr"',
      'guests[1].grants[1].device: unknown device "nic9"; devices: ide0, scr',
      'guests[2].name: duplicate guest name "a" (also guests[0])',
    ]);
    expect(issuesOf({ devices: [{ id: 'x', kind: 'toaster' }] }, ['ata'])).toEqual(['devices[0].kind: unknown device kind "toaster"; known kinds: ata']);
  });

  it('loadConfig names a missing file, bad JSON, and resolves paths against the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mvcfg-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    await expect(loadConfig(join(dir, 'nope.json'))).rejects.toThrow(`cannot read configuration file ${join(dir, 'nope.json')}: no such file`);
    writeFileSync(join(dir, 'bad.json'), '{ "devices": [ }');
    await expect(loadConfig(join(dir, 'bad.json'))).rejects.toThrow(/bad\.json:1:16: not valid JSON/);
    writeFileSync(join(dir, 'ok.json'), JSON.stringify(good));
    // The image must exist (no "create"): beside the file, where the relative path points.
    writeFileSync(join(dir, 'disk.img'), '');
    truncateSync(join(dir, 'disk.img'), 8 << 20);
    const c = await loadConfig(join(dir, 'ok.json'));
    expect(c.socket).toBe(join(dir, 'muxvisor.sock'));
    expect(c.devices[0].backend).toMatchObject({ path: join(dir, 'disk.img') });
    expect(c.guests[1].run).toMatchObject({ driver: join(dir, 'drivers/ata.ts') });
    const err = await loadConfig(join(dir, 'ok.json'), { knownKinds: ['scratch'] }).catch((e) => e);
    expect(err.message).toContain(`${join(dir, 'ok.json')}: invalid configuration:\n  devices[0].kind: unknown device kind "ata"`);
  });

  it('a policy name must be a shipped policy; a file is given as module', () => {
    const c = clone(good) as any;
    c.devices[0].policy = { name: 'round-robbin' };
    expect(issuesOf(c)).toEqual(['devices[0].policy.name: unknown policy "round-robbin"; shipped: round-robin, weighted-fair, priority, edf (a policy file is given as {"module": "path"})']);
    c.devices[0].policy = { module: 'round-robbin.ts' };
    expect(() => parseConfig(c)).not.toThrow();
  });

  it('loadConfig names the JSON path of a bad backend or properties of a built-in kind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mvcfg-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'devs.json');
    writeFileSync(
      file,
      JSON.stringify({
        devices: [
          { id: 'd0', kind: 'ata', backend: { type: 'nbd' } },
          { id: 'd1', kind: 'ata', backend: { type: 'memory', sizeMiB: 1 }, properties: { deadlineNs: -5, modle: 'x' } },
          { id: 'd2', kind: 'ata' },
          { id: 'd3', kind: 'qemu-ide', backend: { type: 'qemu' } },
        ],
      }),
    );
    const err = await loadConfig(file).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const issues = (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
    expect(issues).toContainEqual('devices[0].backend: give either `socket` (a Unix socket path) or `host` (+ `port`)');
    expect(issues).toContainEqual(expect.stringMatching(/^devices\[1\]\.properties\.deadlineNs: /));
    expect(issues).toContainEqual('devices[1].properties: unknown field "modle" (did you mean "model"?)');
    expect(issues).toContainEqual('devices[2].backend: a device of kind ata needs a backend: file | memory | nbd');
    expect(issues).toContainEqual(expect.stringMatching(/^devices\[3\]\.backend\.image: /));
    expect(err.message).toContain(`${file}: invalid configuration:`);
  });

  it('loadConfig resolves a properties.machine path against the file, not a shipped machine name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mvcfg-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'm.json');
    writeFileSync(
      file,
      JSON.stringify({
        devices: [
          { id: 'd0', kind: 'ata', backend: { type: 'memory', sizeMiB: 1 }, properties: { machine: 'machines/my-ata.ts' } },
          { id: 'd1', kind: 'ata', backend: { type: 'memory', sizeMiB: 1 }, properties: { machine: 'ata' } },
          { id: 'd2', kind: 'scratch', properties: { machine: 'local-machine' } },
        ],
      }),
    );
    const c = await loadConfig(file);
    expect(c.devices[0].properties.machine).toBe(join(dir, 'machines/my-ata.ts'));
    expect(c.devices[1].properties.machine).toBe('ata');
    expect(c.devices[2].properties.machine).toBe(join(dir, 'local-machine'));
  });

  it('ships the JSON Schema generated from the zod schema', () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(schemaFileText());
    const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8'));
    expect(schema.properties.guests.items.required).toContain('name');
    expect(schema.additionalProperties).toBe(false);
  });
});
