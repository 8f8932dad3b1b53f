// The network backends' config shapes in one union, for the configuration check
// (src/config/device-shapes.ts) to name a wrong field's JSON path at load time. A type
// registered by a plug-in (registerWireOpener) checks its own fields when opened.

import { z } from 'zod';
import { SwitchBackendSchema } from './switch.ts';
import { TapBackendSchema } from './tap.ts';
import { UdpBackendSchema } from './udp.ts';

const BUILT_IN = ['switch', 'udp', 'tap'];

export const NetBackendSchema = z.union([
  SwitchBackendSchema,
  UdpBackendSchema,
  TapBackendSchema,
  z.looseObject({ type: z.string().refine((t) => !BUILT_IN.includes(t), 'a built-in network backend') }),
]);
