// Self-describing device kinds: every registered kind describes its PCI ids, regions, IRQs
// and properties (type, default, one help sentence); the static descriptions agree with what
// a live device reports; a kind registered without one is described by a default device;
// `muxvisor list` / `describe` print them; docs/devices.md equals the live Markdown.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kindsMarkdown } from '../src/cli/kind-text.ts';
import type { Device, DeviceEdges } from '../src/device.ts';
import { AtaPropertiesSchema, createAta } from '../src/devices/ata/factory.ts';
import { DeviceRegistry } from '../src/devices/registry.ts';
import { createScratch } from '../src/devices/scratch.ts';
import { shippedMachines } from '../src/catalog/machines.ts';
import { SHIPPED_POLICIES } from '../src/catalog/policies.ts';
import { ROOT, useCliProcesses } from './helpers/cli-process.ts';

const EDGES: DeviceEdges = { irq: { set: () => {} }, dma: { read: async () => null, write: async () => false }, clock: () => 0 };
const { cli } = useCliProcesses('mvdescribe-');

describe('device kinds describe themselves', () => {
  const registry = new DeviceRegistry();

  it('every registered kind: PCI ids, regions, IRQs and properties with a type, a default and one help sentence', async () => {
    expect(registry.kinds()).toEqual(expect.arrayContaining(['ata', 'qemu-ide', 'scratch']));
    for (const kind of registry.kinds()) {
      const k = await registry.describe(kind);
      expect(k.kind).toBe(kind);
      expect(k.summary.length).toBeGreaterThan(10);
      // The generic qemu kind's regions are the named QEMU device's (its BARs, or the ISA regions given).
      if (kind !== 'qemu') expect(k.regions.length).toBeGreaterThan(0);
      expect(new Set(k.regions.map((r) => r.name)).size).toBe(k.regions.length);
      for (const p of k.properties) {
        expect(['string', 'number', 'integer', 'boolean'], `${kind}.${p.name}`).toContain(p.type);
        expect(p.help.trim().length, `${kind}.${p.name} help`).toBeGreaterThan(5);
        if (p.default !== null) expect(typeof p.default === 'string' ? 'string' : typeof p.default === 'boolean' ? 'boolean' : 'number').toBe(p.type === 'integer' ? 'number' : p.type);
      }
    }
  });

  it('ata: the static description is what a live device reports, and names every property the config accepts', async () => {
    const info = await registry.describe('ata');
    const dev = await createAta({ edges: EDGES, backend: { type: 'memory', sizeMiB: 1 }, properties: {} });
    const live = dev.describe();
    expect(info.regions).toEqual(live.regions);
    expect(info.pci).toEqual(live.pci);
    expect(info.irqs.map((i) => i.line)).toEqual([live.irq]);
    for (const name of ['model', 'serial', 'firmware', 'writeCache']) expect(info.properties.find((p) => p.name === name)?.default, name).toBe(live.properties.find((p) => p.name === name)?.value);
    expect(info.properties.map((p) => p.name).sort()).toEqual(Object.keys(AtaPropertiesSchema.shape).sort());
  });

  it('scratch: the static description is what a live device reports', async () => {
    const info = await registry.describe('scratch');
    const live = createScratch({ edges: EDGES, properties: {} }).describe();
    expect(info.regions).toEqual(live.regions);
    expect(info.pci).toEqual(live.pci);
    expect(info.irqs.map((i) => i.line)).toEqual([live.irq]);
    expect(info.properties.map((p) => [p.name, p.default])).toEqual(live.properties.map((p) => [p.name, p.value]));
  });

  it('a kind registered without a description is described by a default device of it; one that cannot be built says why', async () => {
    const r = new DeviceRegistry();
    const plain = (): Device => {
      const d = createScratch({ edges: EDGES, properties: {} });
      return { ...d, describe: () => ({ ...d.describe(), kind: 'mine', properties: [{ name: 'speed', value: 3, help: 'how fast' }] }), read: d.read.bind(d), write: d.write.bind(d), reset: d.reset.bind(d), metrics: d.metrics.bind(d) };
    };
    r.register('mine', plain);
    const k = await r.describe('mine');
    expect(k.regions.map((x) => x.name)).toEqual(['regs', 'mem']);
    expect(k.properties).toEqual([{ name: 'speed', type: 'integer', default: 3, help: 'how fast' }]);
    r.register('needy', () => {
      throw new Error('backend must be a tap');
    });
    await expect(r.describe('needy')).rejects.toThrow(/needy has no description .*backend must be a tap/);
    await expect(r.describe('nope')).rejects.toThrow(/unknown device kind "nope"; known kinds: .*ata/);
  });

  it('docs/devices.md equals the live Markdown (regenerate: node src/bin/muxvisor.mjs describe --markdown > docs/devices.md)', async () => {
    const live = kindsMarkdown(await Promise.all(registry.kinds().map((k) => registry.describe(k))));
    expect(readFileSync(join(ROOT, 'docs/devices.md'), 'utf8')).toBe(live);
  });
});

describe('muxvisor list and describe', () => {
  it('list kinds|machines|policies, human and --json; describe KIND, human and --json; an unknown kind is an error', async () => {
    const [kinds, kindsJson, machines, policiesJson, ata, ataJson, unknown, bad] = await Promise.all([
      cli('list', 'kinds'),
      cli('--json', 'list', 'kinds'),
      cli('list', 'machines'),
      cli('--json', 'list', 'policies'),
      cli('describe', 'ata'),
      cli('--json', 'describe', 'qemu-ide'),
      cli('describe', 'nope'),
      cli('list', 'things'),
    ]);
    const registry = new DeviceRegistry();
    expect(kinds.code).toBe(0);
    expect(kinds.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0])).toEqual(registry.kinds());
    expect(JSON.parse(kindsJson.stdout).kinds.map((k: { kind: string }) => k.kind)).toEqual(registry.kinds());
    expect(machines.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0])).toEqual(shippedMachines());
    expect(shippedMachines()).toEqual(expect.arrayContaining(['ata', 'sim', 'uart16550']));
    expect(JSON.parse(policiesJson.stdout).policies).toEqual(SHIPPED_POLICIES.map((name) => ({ name, fairness: expect.stringMatching(/^(equal|weighted|none)$/) })));
    expect(ata.code).toBe(0);
    expect(ata.stdout).toMatch(/^ata: /);
    expect(ata.stdout).toMatch(/PCI: 8086:7010 rev 00, class 010180/);
    expect(ata.stdout).toMatch(/^\s+cmd\s+pio\s+8 bytes\s+legacy 0x1f0$/m);
    expect(ata.stdout).toMatch(/^\s+writeCache\s+boolean\s+default true\s+\S/m);
    expect(JSON.parse(ataJson.stdout)).toEqual(await registry.describe('qemu-ide'));
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown device kind "nope"; known kinds: ata/);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/kinds, machines, policies/);
  }, 60_000);
});
