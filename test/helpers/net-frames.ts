// Moved to src/guests/net-frames.ts (the NIC demo's tap backend pings with it too).
export * from '../../src/guests/net-frames.ts';
