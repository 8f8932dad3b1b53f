// The scripted NE2000 driver moved to src/guests/ne2k-driver.ts (the NIC demo uses it too).
export * from '../../src/guests/ne2k-driver.ts';
