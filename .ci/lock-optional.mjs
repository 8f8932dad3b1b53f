#!/usr/bin/env node
// The npm registry reachable here serves only the Linux builds of packages such as rollup and
// msgpackr-extract, so `npm install` leaves their other-platform optional dependencies out of
// package-lock.json, and `npm ci` then refuses the lock ("Missing: ... from lock file").
// This adds each missing optional dependency as an optional lock entry with its platform, so
// `npm ci` accepts the lock and skips them as on any other registry. Run after `npm install`
// changes the lock: `node .ci/lock-optional.mjs`.
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const pkgs = lock.packages;

/** os/cpu/libc from the package name's platform suffix (android-arm-eabi, linux-x64-musl, win32-ia32-msvc, ...). */
function platformOf(name) {
  const base = name.split('/').pop();
  const os = ['android', 'darwin', 'freebsd', 'linux', 'openbsd', 'openharmony', 'win32', 'sunos', 'aix', 'netbsd'].find((o) => base.includes(`-${o}-`));
  const cpu = ['arm64', 'arm', 'x64', 'ia32', 'loong64', 'ppc64', 'riscv64', 's390x', 'mips64el'].find((c) => new RegExp(`-${c}(-|$)`).test(base));
  const entry = {};
  if (cpu) entry.cpu = [cpu];
  if (base.endsWith('-musl') || base.endsWith('-musleabihf')) entry.libc = ['musl'];
  if (os) entry.os = [os];
  return entry;
}

let added = 0;
for (const [where, p] of Object.entries(pkgs)) {
  for (const [name, spec] of Object.entries(p.optionalDependencies ?? {})) {
    const nested = `${where ? where + '/' : ''}node_modules/${name}`;
    if (pkgs[nested] || pkgs[`node_modules/${name}`]) continue;
    // Keys as npm itself orders them (version, then alphabetical: cpu, dev, libc, optional,
    // os), so a later `npm install` leaves the lock as it is.
    const { cpu, libc, os } = platformOf(name);
    pkgs[`node_modules/${name}`] = {
      version: spec.replace(/^[\^~=]/, ''),
      ...(cpu ? { cpu } : {}),
      ...(p.dev ? { dev: true } : {}),
      ...(libc ? { libc } : {}),
      optional: true,
      ...(os ? { os } : {}),
    };
    added++;
  }
}
lock.packages = Object.fromEntries(Object.entries(pkgs).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync(path, JSON.stringify(lock, null, 2) + '\n');
console.log(`lock-optional: added ${added} optional entries`);
