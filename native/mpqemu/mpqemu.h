// Shared by addon.c (sockets) and ram.c (guest RAM, eventfds, descriptors) of
// muxvisor_mpqemu.node; addon.c says what the addon is for.
#ifndef MUXVISOR_MPQEMU_H
#define MUXVISOR_MPQEMU_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>


#define CHECK(call)                                                               \
	do {                                                                      \
		if ((call) != napi_ok) {                                          \
			napi_throw_error(env, NULL, #call " failed");             \
			return NULL;                                              \
		}                                                                 \
	} while (0)

// Throws an Error whose code is errno's name ("EAGAIN") and message "what: strerror".
napi_value mpq_fail(napi_env env, const char *what);
napi_value mpq_undefined(napi_env env);

// ram.c
napi_value mpq_map_fd(napi_env env, napi_callback_info info);
napi_value mpq_unmap(napi_env env, napi_callback_info info);
napi_value mpq_eventfd(napi_env env, napi_callback_info info);
napi_value mpq_eventfd_write(napi_env env, napi_callback_info info);
napi_value mpq_eventfd_read(napi_env env, napi_callback_info info);
napi_value mpq_close(napi_env env, napi_callback_info info);

#endif
