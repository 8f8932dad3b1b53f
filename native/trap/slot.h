// The shared-memory access slot (README.md "Fast path", src/channel/PROTOCOL.md "slot"):
// one request/reply slot in a sealed memfd that the shim creates and the supervisor
// maps (through /proc/PID/fd/N). The layout is fixed by offsets, mirrored in src/channel/slot.ts.
#ifndef MUXTRAP_SLOT_H
#define MUXTRAP_SLOT_H

#include <stdint.h>

#define MT_SLOT_MAGIC 0x314c534du // "MSL1"
#define MT_SLOT_SIZE 8192u
#define MT_SLOT_DATA 4096u        // string I/O bytes per access (= MT_CHUNK)

struct mt_slot {
	uint32_t magic;   // 0
	uint32_t req;     // 4   shim: sequence number of the posted request
	uint32_t rep;     // 8   supervisor: sequence number of the answered request
	uint32_t asleep;  // 12  supervisor: 1 = not polling, ring the doorbell
	uint32_t waiting; // 16  shim: 1 = waiting (or about to) on `bell` with futex
	uint32_t bell;    // 20  supervisor: bumped and futex-woken for a waiting shim
	uint32_t sent;    // 24  supervisor: frames it has sent on the socket so far
	uint32_t spin;    // 28  supervisor: 1 = we may busy-wait for answers (few peers are active)
	uint8_t space;    // 32  request: mt_space
	uint8_t size;     // 33
	uint8_t write;    // 34
	uint8_t pad1;     // 35
	uint32_t count;   // 36
	uint64_t addr;    // 40
	uint64_t value;   // 48  write value
	uint64_t result;  // 56  reply: value read
	uint32_t refused; // 64  reply: 1 = refused (value all-ones)
	uint32_t calm;    // 68  shim: 1 = we are being preempted and use `acc` frames for a while
	uint8_t pad2[4096 - 72];
	uint8_t data[MT_SLOT_DATA]; // 4096: string write bytes, then string read bytes
};

_Static_assert(sizeof(struct mt_slot) == MT_SLOT_SIZE, "slot layout is fixed (src/channel/slot.ts)");

int mt_slot_fd(void);          // the slot's memfd (announced in hello), or -1
const char *mt_slot_why(void); // after a failed mt_slot_create: the call that failed

#endif
