// `devices[].model`: a user's device model module, loaded wherever it lives (TypeScript or
// JavaScript, ESM or CommonJS). Its default export is the kind's factory (ctx) => Device; a
// `kindInfo` export, if any, is its self-description (src/devices/kind-info.ts).

import { pathToFileURL } from 'node:url';
import { defaultExport, importUserModule } from '../util/import-module.ts';
import type { DeviceFactory } from './device-factory.ts';
import type { KindInfo } from './kind-info.ts';

export interface UserDeviceModel {
  factory: DeviceFactory;
  info?: KindInfo;
}

/** The shape a model module must have, for error messages. */
const SHAPE = 'a device model module must default-export a factory (ctx) => Device (muxvisor/device), and may export kindInfo';

/**
 * Load the model module at `file` (an absolute path) for devices of `kind`. Throws an Error
 * naming `where` (the JSON path, `devices[0].model`) and what is wrong.
 */
export async function loadDeviceModel(file: string, kind: string, where: string): Promise<UserDeviceModel> {
  let mod: { default?: unknown; kindInfo?: unknown };
  try {
    mod = (await importUserModule(pathToFileURL(file).href)) as typeof mod;
  } catch (e) {
    throw new Error(`${where}: cannot load ${file}: ${(e as Error).message}`, { cause: e });
  }
  const factory = defaultExport(mod);
  if (typeof factory !== 'function') throw new Error(`${where}: ${file}: ${SHAPE}`);
  // A CommonJS module's named exports may arrive only on its default (the exports object).
  const info = mod.kindInfo ?? (mod.default as { kindInfo?: unknown } | undefined)?.kindInfo;
  if (info !== undefined && (typeof info !== 'object' || info === null || !Array.isArray((info as KindInfo).regions)))
    throw new Error(`${where}: ${file}: kindInfo must be a KindInfo object (kind, summary, regions, irqs, properties)`);
  // The config's kind names it; a kindInfo written for another name describes this one.
  return { factory: factory as DeviceFactory, info: info === undefined ? undefined : { ...(info as KindInfo), kind } };
}
