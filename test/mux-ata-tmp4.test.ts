import { it } from 'vitest';
import { openAtaRig } from './helpers/ata-mux.ts';
it('t', async () => {
  const rig = await openAtaRig({ backend: 'file', sizeMiB: 1, properties: { deadlineNs: 50_000_000 }, guests: [{ name: 'A' }] });
  console.log('ok', (await rig.g('A').driver.identify()).sectors);
  await rig.close();
});
