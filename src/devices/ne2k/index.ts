// NE2000 (RTL8029 PCI) network card: public entry points.
//   new Ne2kDevice(edges, wire, { mac })  -> the model (a Device; region 0 = the 32-byte I/O BAR)
//   createNe2k(ctx)                        -> DeviceFactory for the registry (kind `ne2k`)
//   NicWire / LoopWire / NullWire          -> the wire edge a backend implements
// Details: src/devices/ne2k/README.md.

export { Ne2kDevice, REGION_REGS, type Ne2kOptions, type Ne2kState } from './ne2k-device.ts';
export { createNe2k, Ne2kPropertiesSchema, registerWireOpener, openWire, type WireOpener } from './factory.ts';
export { LoopWire, NullWire, type NicWire, type FrameReceiver, type RxResult } from './wire.ts';
export { COUNTER_HELP, type Ne2kCounters, type CounterName } from './counters.ts';
export { NE2K_KIND } from './kind.ts';
export { buildProm, parseMac, formatMac } from './memory.ts';
export { crc32Be, multicastIndex, acceptFrame } from './filter.ts';
// The pieces, for a MUX that keeps a virtual card per guest (headers and remote DMA as the model does them).
export { ringRoom, ringValid, storeFrame, type RxOutcome } from './ring.ts';
export { dataPortRead, dataPortWrite, remoteDmaBusy } from './remote-dma.ts';
export { NicMemory } from './memory.ts';
export { powerOnRegs, checkRegs, copyRegs, type Ne2kRegs } from './state.ts';
export * as ne2kRegs from './regs.ts';
