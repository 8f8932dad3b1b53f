// The MUX engine's public API (see README.md in this folder).

export { defineMux, MuxDefinitionError, eventType, registerWrite } from './define.ts';
export type { Answer, ContextRegister, GuestView, MuxAccess, MuxDefinition, MuxEvent, Register, RegisterSpec, ReplayIo, ResetPath, Translation } from './define.ts';
export { createMux, MuxEngine, monotonicClock, realTimers } from './engine.ts';
export type { MuxOptions, MuxStats, MuxTrace, Timers } from './engine.ts';
export { loadPolicy, loadPolicyFactory, policyUrl, PolicyLoadError, SHIPPED_POLICIES, validatePolicy } from './policy.ts';
export type { Fairness, OwnerView, Policy, PolicyFactory, PolicyView, WaiterView } from './policy.ts';
export { loadMux, machineUrl } from './load-machine.ts';
export { compileMachine, createStepper, fastPathObstacle, machineEventTypes, statePath } from './compile.ts';
export type { Stepper, StepperMode, TransitionTable } from './compile.ts';
export { resolveRegisters, registerProblems } from './registers.ts';
export { prepareMuxRouters, muxRouterFactory, hasMachine } from './router-factory.ts';
export type { MuxDeviceConfig, MuxRouterOptions } from './router-factory.ts';
