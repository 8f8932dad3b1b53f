// What a test needs from the machine, and why it skips when that is absent. Every test
// that needs an optional system tool asks here, so a skip always carries its reason and the
// one package that brings the tool back; the skip reporter (test/helpers/skip-reporter.ts)
// lists them, and on CI (MUXVISOR_FORBID_SKIPS=1) fails the run if anything was skipped.
//
// MUXVISOR_TEST_HIDE=kvm,qemu,... makes the named requirements count as absent: the
// fresh-machine test uses it for the ones PATH cannot hide (/dev/kvm).

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBinary } from '../../src/backends/qtest.ts';
import { kvmUnavailableReason } from '../../src/trap/kvm.ts';

interface Tool {
  /** The program looked up on PATH. */
  binary: string;
  /** The Debian package that installs it. */
  pkg: string;
}

const TOOLS = {
  qemu: { binary: 'qemu-system-x86_64', pkg: 'qemu-system-x86' },
  'qemu-img': { binary: 'qemu-img', pkg: 'qemu-utils' },
  nbdkit: { binary: 'nbdkit', pkg: 'nbdkit' },
  'nbd-server': { binary: 'nbd-server', pkg: 'nbd-server' },
  strace: { binary: 'strace', pkg: 'strace' },
  lspci: { binary: 'lspci', pkg: 'pciutils' },
  chromium: { binary: 'chromium', pkg: 'chromium' },
  tcpdump: { binary: 'tcpdump', pkg: 'tcpdump' },
} satisfies Record<string, Tool>;

export type Requirement = keyof typeof TOOLS | 'kvm' | 'root' | 'netns' | 'linux-kit' | 'e2fsprogs';

/** The Linux guest kit (native/linux-guest/build-kit.sh): bzImage, initramfs.cpio.gz, manifest.json. */
export const LINUX_KIT_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../native/linux-guest/build');
const LINUX_KIT_FILES = ['bzImage', 'initramfs.cpio.gz', 'manifest.json'];

/** The Debian packages behind every optional tool (the README's install line lists them). */
export const OPTIONAL_PACKAGES: readonly string[] = Object.values(TOOLS).map((t) => t.pkg);

function hidden(): Set<string> {
  return new Set((process.env.MUXVISOR_TEST_HIDE ?? '').split(',').map((s) => s.trim()).filter(Boolean));
}

/** The absolute path of `binary` on PATH, or null. */
export const onPath = (binary: string): string | null => findBinary(binary);

function reasonFor(req: Requirement): string | null {
  if (hidden().has(req)) return `${req} hidden by MUXVISOR_TEST_HIDE`;
  if (req === 'kvm') return kvmUnavailableReason();
  if (req === 'root') return process.getuid?.() === 0 ? null : 'needs root (network namespaces, TAP devices)';
  if (req === 'netns') {
    // Named network namespaces and a TAP in them (the tap network backend): root, iproute2's ip, /dev/net/tun, python3 (its TAP bridge).
    if (process.getuid?.() !== 0) return 'needs root (ip netns, TAP devices)';
    if (!(onPath('ip') ?? findBinary('/usr/sbin/ip') ?? findBinary('/sbin/ip'))) return 'ip not installed — apt-get install iproute2';
    if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun (TUN/TAP driver)';
    return onPath('python3') ? null : 'python3 not installed — apt-get install python3 (the tap backend\'s bridge)';
  }
  if (req === 'linux-kit') {
    const absent = LINUX_KIT_FILES.filter((f) => !existsSync(join(LINUX_KIT_DIR, f)));
    return absent.length
      ? `the Linux guest kit is not built (no ${absent.join(', ')} in native/linux-guest/build) — npm run guest-kit (it fetches Debian's kernel with apt-get download, .ci/run builds it)`
      : null;
  }
  if (req === 'e2fsprogs') {
    // Debian puts them in /sbin, which a user's PATH may lack.
    const absent = ['e2fsck', 'debugfs', 'dumpe2fs'].filter((b) => !e2fsTool(b));
    return absent.length ? `${absent.join(', ')} not installed — apt-get install e2fsprogs` : null;
  }
  const tool: Tool = TOOLS[req];
  return onPath(tool.binary) ? null : `${tool.binary} not installed — apt-get install ${tool.pkg}`;
}

/** The path of an e2fsprogs program (PATH, then /usr/sbin and /sbin), or null. */
export function e2fsTool(binary: string): string | null {
  if (hidden().has('e2fsprogs')) return null;
  return onPath(binary) ?? findBinary(join('/usr/sbin', binary)) ?? findBinary(join('/sbin', binary));
}

/** Why a test needing all of `reqs` must skip (every missing one, joined), or null to run it. */
export function missing(...reqs: Requirement[]): string | null {
  const why = reqs.map(reasonFor).filter((r): r is string => r !== null);
  return why.length ? why.join('; ') : null;
}

/** Why a test needing a built file must skip, or null. */
export function missingFile(path: string, how = 'npm install builds it'): string | null {
  return existsSync(path) ? null : `${path} is not built (${how})`;
}

/** A title that carries the skip reason, so the reporter and the default output show it. */
export function titled(title: string, why: string | null): string {
  return why ? `${title} [skipped: ${why}]` : title;
}
