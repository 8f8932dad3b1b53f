// Grants of a shared NIC in the configuration: each guest's MAC is its own, unicast and well
// formed; errors name the grant's JSON path.

import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config/load.ts';

function issuesOf(grants: Array<Record<string, unknown>>, device: Record<string, unknown> = {}): Array<{ path: string; message: string }> {
  try {
    parseConfig({
      devices: [{ id: 'nic0', kind: 'ne2k', backend: { type: 'switch' }, ...device }, { id: 'disk0', kind: 'ata', backend: { type: 'memory', sizeMiB: 1 } }],
      guests: grants.map((g, i) => ({ name: `g${i}`, grants: [g] })),
    });
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.issues;
  }
}

describe('shared NIC grants', () => {
  it('accepts distinct unicast MACs and a promiscuous grant', () => {
    expect(issuesOf([{ device: 'nic0', mac: '52:54:00:12:34:01' }, { device: 'nic0', mac: '52:54:00:12:34:02', promiscuous: true }])).toEqual([]);
  });

  it('a MAC shared by two guests names both grants', () => {
    const issues = issuesOf([{ device: 'nic0', mac: '52:54:00:12:34:01' }, { device: 'nic0', mac: '52:54:00:12:34:01' }]);
    expect(issues).toEqual([{ path: 'guests[1].grants[0].mac', message: expect.stringMatching(/52:54:00:12:34:01 .*guests\[0\]\.grants\[0\] \(guest "g0"\).*its own MAC/) }]);
  });

  it('two grants without a mac both take the card\'s MAC: an error naming the second', () => {
    const issues = issuesOf([{ device: 'nic0' }, { device: 'nic0' }], { properties: { mac: '52:54:00:aa:bb:cc' } });
    expect(issues).toEqual([{ path: 'guests[1].grants[0]', message: expect.stringContaining("names no mac, so it takes the card's 52:54:00:aa:bb:cc") }]);
  });

  it('multicast, broadcast and malformed MACs are errors at the grant\'s mac', () => {
    expect(issuesOf([{ device: 'nic0', mac: '01:00:5e:00:00:01' }])).toEqual([{ path: 'guests[0].grants[0].mac', message: expect.stringContaining('multicast address') }]);
    expect(issuesOf([{ device: 'nic0', mac: 'ff:ff:ff:ff:ff:ff' }])).toEqual([{ path: 'guests[0].grants[0].mac', message: expect.stringContaining('broadcast address') }]);
    expect(issuesOf([{ device: 'nic0', mac: '52:54:00:12:34' }])).toEqual([{ path: 'guests[0].grants[0].mac', message: expect.stringContaining('expected a MAC address') }]);
    expect(issuesOf([{ device: 'nic0', mac: '52:54:00:12:34:zz' }])[0].path).toBe('guests[0].grants[0].mac');
  });

  it('mac or promiscuous on a grant of a disk is an error', () => {
    const issues = issuesOf([{ device: 'disk0', mac: '52:54:00:12:34:01', promiscuous: true }]);
    expect(issues.map((i) => i.path)).toEqual(['guests[0].grants[0].mac', 'guests[0].grants[0].promiscuous']);
    expect(issues[0].message).toContain('not a network card');
  });
});

describe('shared NIC backends in a configuration file', () => {
  it('a bad udp or tap field is an error naming its JSON path when the file is loaded', async () => {
    const { loadConfig } = await import('../src/config/load.ts');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'muxvisor-nicconf-'));
    try {
      const file = join(dir, 'c.json');
      const load = async (backend: unknown) => {
        writeFileSync(file, JSON.stringify({ devices: [{ id: 'nic0', kind: 'ne2k', backend }], guests: [] }));
        return loadConfig(file).then(
          () => [],
          (e: ConfigError) => e.issues,
        );
      };
      expect(await load({ type: 'udp', local: '127.0.0.1', remote: '127.0.0.1:9' })).toEqual([{ path: 'devices[0].backend.local', message: expect.stringContaining('HOST:PORT') }]);
      expect((await load({ type: 'tap', ifname: 'a-name-much-too-long' }))[0].path).toBe('devices[0].backend.ifname');
      expect(await load({ type: 'switch' })).toEqual([]);
      expect(await load(undefined)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
