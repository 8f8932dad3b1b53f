// Framing of the channel over the supervisor socket (frame.c). Private to the shim.
#ifndef MUXTRAP_FRAME_H
#define MUXTRAP_FRAME_H

#include "msgpack.h"
#include "wire.h"

#include <stdint.h>

#define MT_MAX_FRAME (1u << 20) // PROTOCOL.md: 1..1 MiB

extern int mt_sock;               // the connected socket, -1 before
extern uint32_t mt_frames;        // frames received so far (the slot's `sent` counts the same)
extern uint64_t mt_frame_spin_ns; // busy-poll this long before a blocking recv (MUXVISOR_SPIN_US)

struct mp_w mt_frame_begin(void);      // a writer after the length header
int mt_frame_send(struct mp_w *w);     // 0, or -1 (overflow, socket error)
int mt_frame_buffered(uint32_t *n);    // a whole frame is buffered; *n its length once known
int mt_frame_recv(struct mt_wire *m);  // 0, or -1 with errno (ECONNRESET, EBADMSG, EPROTO)
const char *mt_frame_why(void);        // the reason of the last failed mt_frame_recv
void mt_frame_reset(void);

#endif
