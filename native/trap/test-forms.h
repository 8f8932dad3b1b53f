// Shared by the parts of the instruction-form test program (test-forms*.c).
#ifndef MUXTRAP_TEST_FORMS_H
#define MUXTRAP_TEST_FORMS_H

#include "echo.h"

#include <stdint.h>

#define MMIO_BUS 0xfebf0000ull // bus address the test BAR is mapped at
#define PIO 0
#define MMIO 1

extern int failures;
void expect(int sp, char dir, uint64_t addr, int size, unsigned n, uint64_t v, const void *b);
void check(const char *what, uint64_t got, uint64_t want);
uint64_t pat(int sp, uint64_t addr, int size);

uint8_t *map_bar(void);
void mmio_forms(uint8_t *bar);

#endif
