// Times trapped `inb` instructions: bench-inb PORT COUNT [WARMUP] prints the mean cost in ns.
// Run under libmuxtrap.so with MUXVISOR_LOCAL_ECHO=1 (floor) or a supervisor socket.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>
#include <time.h>

int main(int argc, char **argv)
{
	unsigned port = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 0x80;
	long n = argc > 2 ? strtol(argv[2], NULL, 0) : 10000;
	long warm = argc > 3 ? strtol(argv[3], NULL, 0) : n / 10 + 1;
	if (ioperm(port, 1, 1) < 0) {
		perror("ioperm");
		return 1;
	}
	struct timespec t0, t1;
	unsigned sum = 0;
	for (long i = 0; i < warm; i++) // warm up: page faults, lazy binding, caches, the peer's JIT
		sum += inb((uint16_t)port);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++)
		sum += inb((uint16_t)port);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)n;
	printf("{\"port\":%u,\"count\":%ld,\"nsPerInb\":%.1f,\"checksum\":%u}\n", port, n, ns, sum);
	return 0;
}
