// `muxvisor`: the programmatic API. Load a config, start a supervisor with a MUX per shared
// device, attach in-process guests, read statistics:
//
//   const config = await loadConfig('muxvisor.json');
//   const sup = new Supervisor({ config, createRouter: await muxRouterFactory(config) });
//   await sup.start();
//   const guest = sup.attachLocalGuest('vm1');
//   ... sup.stats()

export { loadConfig, parseConfig, ConfigError, configJsonSchema } from '../config/load.ts';
export type { ParseOptions } from '../config/load.ts';
export type { Config, ConfigInput, DeviceConfig, GuestConfig, Grant, ConfigIssue } from '../config/schema.ts';
export { Supervisor, parseEndpoint } from '../supervisor.ts';
export type { AccessObserver, DeviceEntry, LocalGuest, LocalGuestOptions, RouterFactory, SupervisorOptions, SupervisorStats } from '../supervisor.ts';
export { muxRouterFactory, prepareMuxRouters, hasMachine, MuxConfigError } from '../mux/router-factory.ts';
export type { MuxDeviceConfig, MuxRouterOptions } from '../mux/router-factory.ts';
export { DeviceRegistry, builtinKinds } from '../devices/registry.ts';
export type { DeviceContext, DeviceFactory } from '../devices/registry.ts';
export { loadMux } from '../mux/load-machine.ts';
export { loadPolicy, loadPolicyFactory } from '../mux/policy.ts';
export type { ScriptedDriver } from '../launch/scripted.ts';
export type { GuestPort } from '../guests/port.ts';
export { PortIo } from '../guests/port.ts';
export type { Access, Reply } from '../access.ts';
