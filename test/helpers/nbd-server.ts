// The NBD tests start a real nbdkit through the same launcher as `demo --backend nbd`.
export { startNbdkit, type NbdkitServer } from '../../src/backends/nbdkit-server.ts';
