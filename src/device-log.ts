// The log edge of a device (src/device.ts DeviceLog): a host failure the device reports (a
// backend's I/O error, QEMU gone) becomes one error line naming the device, its kind, what
// failed and why. A backend that fails every command could otherwise flood the log: lines are
// limited per device (src/log-limit.ts); the first line after a quiet spell says how many
// were left out. The device's own counters (metrics: backendErrors) count every one.

import type { DeviceLog } from './device.ts';
import type { Logger } from './log.ts';
import { LogLimiter } from './log-limit.ts';

export function deviceLogEdge(log: Logger, device: string, kind: string, limiter = new LogLimiter()): DeviceLog {
  return {
    hostError(what, err) {
      const { log: take, leftOut } = limiter.take(device);
      if (!take) return;
      const why = err instanceof Error ? err.message : String(err);
      log.error({ device, kind, err, ...(leftOut > 0 ? { leftOut } : {}) }, `device ${device} (${kind}): ${what} failed: ${why}`);
    },
  };
}
