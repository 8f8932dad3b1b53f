/* Guest image loading: ELF32/ELF64 program headers, multiboot v1 a.out kludge, flat binaries. */
#define _GNU_SOURCE
#include "runner.h"
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MULTIBOOT_HEADER_MAGIC 0x1BADB002
#define MULTIBOOT_SEARCH 8192           /* the header must sit in the first 8 KiB */
#define MULTIBOOT_AOUT_KLUDGE 0x00010000 /* header flags bit 16: use the address fields */
#define MB_INFO_MEMORY 0x1               /* mem_lower/mem_upper valid */
#define MB_INFO_CMDLINE 0x4              /* cmdline valid */
#define MB_INFO_ADDR 0x9000              /* free low memory, below the EBDA */
#define MB_CMDLINE_ADDR 0x9100
#define MB_CMDLINE_MAX 0x0f00

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) die("guest image %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) < 0) die("guest image %s: fseek: %s", path, strerror(errno));
    long n = ftell(f);
    if (n <= 0) die("guest image %s: empty or unreadable", path);
    rewind(f);
    uint8_t *buf = malloc((size_t)n);
    if (!buf) die("guest image %s: out of memory for %ld bytes", path, n);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) die("guest image %s: short read", path);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* Copies filesz bytes to guest-physical addr and zeroes up to memsz, inside guest RAM only. */
static void place(struct vm *vm, const char *path, uint64_t addr, const uint8_t *src, uint64_t filesz, uint64_t memsz) {
    if (memsz < filesz || addr > vm->mem_size || memsz > vm->mem_size - addr)
        die("guest image %s: segment at 0x%llx (+0x%llx bytes) lies outside guest RAM (%zu MiB); raise --mem",
            path, (unsigned long long)addr, (unsigned long long)memsz, vm->mem_size >> 20);
    memcpy(vm->mem + addr, src, filesz);
    memset(vm->mem + addr + filesz, 0, memsz - filesz);
}

static uint32_t load_elf(struct vm *vm, const char *path, const uint8_t *img, size_t size) {
    int is64 = img[EI_CLASS] == ELFCLASS64;
    if (size < (is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr))) die("guest image %s: truncated ELF header", path);
    const Elf32_Ehdr *e32 = (const void *)img;
    const Elf64_Ehdr *e64 = (const void *)img;
    uint64_t phoff = is64 ? e64->e_phoff : e32->e_phoff;
    unsigned phnum = is64 ? e64->e_phnum : e32->e_phnum;
    size_t phsize = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    if (phoff > size || phnum * phsize > size - phoff) die("guest image %s: program headers outside the file", path);
    int loaded = 0;
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *ph = img + phoff + i * phsize;
        uint64_t type, off, paddr, filesz, memsz;
        if (is64) {
            const Elf64_Phdr *p = (const void *)ph;
            type = p->p_type; off = p->p_offset; paddr = p->p_paddr; filesz = p->p_filesz; memsz = p->p_memsz;
        } else {
            const Elf32_Phdr *p = (const void *)ph;
            type = p->p_type; off = p->p_offset; paddr = p->p_paddr; filesz = p->p_filesz; memsz = p->p_memsz;
        }
        if (type != PT_LOAD) continue;
        if (off > size || filesz > size - off) die("guest image %s: segment %u outside the file", path, i);
        place(vm, path, paddr, img + off, filesz, memsz);
        loaded++;
    }
    if (!loaded) die("guest image %s: no PT_LOAD segment", path);
    uint64_t entry = is64 ? e64->e_entry : e32->e_entry;
    if (entry >> 32) die("guest image %s: entry 0x%llx is above 4 GiB; multiboot enters in 32-bit mode",
                         path, (unsigned long long)entry);
    return (uint32_t)entry;
}

/* Multiboot v1 header fields (spec 3.1.1), as 32-bit little-endian words. */
struct mb_header { uint32_t magic, flags, checksum, header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr; };

static const struct mb_header *find_multiboot(const uint8_t *img, size_t size, size_t *offset) {
    for (size_t off = 0; off + 12 <= size && off < MULTIBOOT_SEARCH; off += 4) {
        const struct mb_header *h = (const void *)(img + off);
        if (h->magic == MULTIBOOT_HEADER_MAGIC && h->magic + h->flags + h->checksum == 0) {
            *offset = off;
            return h;
        }
    }
    return NULL;
}

static uint32_t load_aout_kludge(struct vm *vm, const char *path, const uint8_t *img, size_t size,
                                 const struct mb_header *h, size_t hoff) {
    if (hoff + sizeof *h > size) die("guest image %s: truncated multiboot header", path);
    if (h->header_addr < h->load_addr || h->header_addr - h->load_addr > hoff)
        die("guest image %s: multiboot header_addr/load_addr inconsistent", path);
    size_t file_off = hoff - (h->header_addr - h->load_addr);
    uint64_t filesz = h->load_end_addr ? (uint64_t)h->load_end_addr - h->load_addr : size - file_off;
    if (filesz > size - file_off) die("guest image %s: load_end_addr beyond the file", path);
    uint64_t memsz = h->bss_end_addr ? (uint64_t)h->bss_end_addr - h->load_addr : filesz;
    place(vm, path, h->load_addr, img + file_off, filesz, memsz);
    return h->entry_addr;
}

uint32_t load_kernel(struct vm *vm, const char *path) {
    size_t size, hoff = 0;
    uint8_t *img = read_file(path, &size);
    const struct mb_header *mb = find_multiboot(img, size, &hoff);
    uint32_t entry;
    if (mb && (mb->flags & MULTIBOOT_AOUT_KLUDGE)) entry = load_aout_kludge(vm, path, img, size, mb, hoff);
    else if (size >= EI_NIDENT && memcmp(img, ELFMAG, SELFMAG) == 0) entry = load_elf(vm, path, img, size);
    else die("guest image %s: neither ELF nor a multiboot kernel with load addresses; use --flat ADDR", path);
    free(img);
    return entry;
}

void load_flat(struct vm *vm, const char *path, uint64_t addr) {
    size_t size;
    uint8_t *img = read_file(path, &size);
    place(vm, path, addr, img, size, size);
    free(img);
}

uint32_t write_multiboot_info(struct vm *vm, const char *cmdline) {
    size_t n = strlen(cmdline);
    if (n >= MB_CMDLINE_MAX) die("--cmdline is longer than %d bytes", MB_CMDLINE_MAX - 1);
    memcpy(vm->mem + MB_CMDLINE_ADDR, cmdline, n + 1);
    uint32_t info[5] = {
        MB_INFO_MEMORY | MB_INFO_CMDLINE,
        640,                                            /* mem_lower, KiB */
        (uint32_t)((vm->mem_size - 0x100000) >> 10),    /* mem_upper: KiB above 1 MiB */
        0,                                              /* boot_device (flag not set) */
        MB_CMDLINE_ADDR,
    };
    memcpy(vm->mem + MB_INFO_ADDR, info, sizeof info);
    return MB_INFO_ADDR;
}
