// `muxvisor demo --trap kvm`: N KVM guests (native/guests ata-driver, multiboot) share one
// ATA disk through the MUX; the same summary as the scripted disk demo.
export { runKvmDisk as runKvmDemo } from '../trap/kvm-disk.ts';
