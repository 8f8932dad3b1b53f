// The network backends behind an NE2000 (kind ne2k), by backend type. The device registry
// registers them (registerWireOpener) before it builds an ne2k device.
//   switch: guests on the card reach only each other
//   udp:    one datagram = one frame (QEMU's -netdev socket,udp=)
//   tap:    a TAP interface, optionally inside a named network namespace

import { openSwitchWire } from './switch.ts';
import { openTapWire } from './tap.ts';
import { openUdpWire } from './udp.ts';
import type { NetWireOpener } from './wire-types.ts';

export const NET_WIRE_OPENERS: Record<string, NetWireOpener> = {
  switch: openSwitchWire,
  udp: openUdpWire,
  tap: openTapWire,
};

export type { NetWire, NetWireOpener, CardReceiver } from './wire-types.ts';
