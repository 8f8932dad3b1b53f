// `muxvisor/device`: the device interface a device model implements and the edges it is
// handed (IRQ line, DMA port, clock, the log edge for host failures), the factory a `devices[].model` module exports
// and the self-description (KindInfo) it may export beside it.

export type { Clock, DevSize, Device, DeviceDescription, DeviceEdges, DeviceLog, DeviceMetrics, DmaPort, IrqLine, PciIdentity, PropertyInfo, RegionInfo } from '../device.ts';
export type { DeviceContext, DeviceFactory } from '../devices/device-factory.ts';
export type { IrqSpec, KindInfo, PropertySpec } from '../devices/kind-info.ts';
export { kindInfoFromDevice } from '../devices/kind-info.ts';
