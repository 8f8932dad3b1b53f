// `muxvisor/define`: what a machine module (a MUX statechart) imports: defineMux, the
// definition's types and the register-map helpers. The xstate it uses is muxvisor's own
// dependency, so `import { setup } from 'xstate'` in a user's folder finds the same one.

export { defineMux, MuxDefinitionError, eventType, registerRead, registerWrite } from '../mux/define.ts';
export type { Answer, ContextRegister, GuestView, MuxAccess, MuxDefinition, MuxEvent, Register, RegisterSpec, ReplayIo, ResetPath, Translation } from '../mux/define.ts';
export { resolveRegisters, registerProblems } from '../mux/registers.ts';
export type { RegisterMap } from '../mux/registers.ts';
