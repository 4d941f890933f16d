/*
 * Checks a plugin copy before dlopen maps it. The loader trusts the file's headers: a segment that
 * reaches past the end of a truncated file is mapped anyway, and the first touch of its missing
 * pages kills the process with SIGBUS. So the ELF header must describe a shared object for this
 * machine, and the program header table, every segment's bytes and the section header table must
 * lie inside the file.
 */
#include <elf.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "forum.h"

_Static_assert(sizeof(void *) == 8, "forumd loads ELF64 plugins only");

/* the executable's own ELF header, mapped by the kernel and named by the linker: what a plugin must match */
extern const Elf64_Ehdr __ehdr_start __attribute__((weak, visibility("hidden")));

static int bad(char *msg, size_t msglen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return -1;
}

/* True when [off, off + count * entsize) lies inside a file of `size` bytes, without overflowing. */
static int inside(uint64_t off, uint64_t count, uint64_t entsize, size_t size)
{
    if (off > size)
        return 0;
    if (entsize != 0 && count > (size - off) / entsize)
        return 0;
    return 1;
}

static uint16_t own_machine(void)
{
    if (&__ehdr_start != NULL)
        return __ehdr_start.e_machine;
#if defined(__x86_64__)
    return EM_X86_64;
#elif defined(__aarch64__)
    return EM_AARCH64;
#else
    return EM_NONE; /* no linker-provided header and an unlisted machine: refuse rather than guess */
#endif
}

int forum_elf_check(const unsigned char *buf, size_t size, char *msg, size_t msglen)
{
    Elf64_Ehdr eh;
    size_t loads = 0;

    if (size < sizeof(eh))
        return bad(msg, msglen, "file too short (%zu bytes) to hold an ELF header", size);
    memcpy(&eh, buf, sizeof(eh)); /* the buffer need not be aligned for the struct */
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        return bad(msg, msglen, "invalid ELF header (no ELF magic)");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64)
        return bad(msg, msglen, "not a 64-bit ELF file (class %u)", eh.e_ident[EI_CLASS]);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (eh.e_ident[EI_DATA] != ELFDATA2LSB)
#else
    if (eh.e_ident[EI_DATA] != ELFDATA2MSB)
#endif
        return bad(msg, msglen, "the byte order is not this machine's");
    if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT)
        return bad(msg, msglen, "unknown ELF version %u", eh.e_ident[EI_VERSION]);
    if (eh.e_type != ET_DYN)
        return bad(msg, msglen, "not a shared object (ELF type %u)", eh.e_type);
    if (eh.e_machine != own_machine())
        return bad(msg, msglen, "built for another machine (ELF machine %u, this forumd runs on %u)", eh.e_machine, own_machine());
    if (eh.e_ehsize < sizeof(eh))
        return bad(msg, msglen, "its ELF header size (%u) is too small", eh.e_ehsize);

    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum == PN_XNUM)
        return bad(msg, msglen, "bad program header table (%u entries of %u bytes)", eh.e_phnum, eh.e_phentsize);
    if (!inside(eh.e_phoff, eh.e_phnum, sizeof(Elf64_Phdr), size))
        return bad(msg, msglen, "the program header table (offset %llu, %u entries) lies past the end of the file (%zu bytes)",
                   (unsigned long long)eh.e_phoff, eh.e_phnum, size);
    for (unsigned i = 0; i != eh.e_phnum; ++i) {
        Elf64_Phdr ph;
        memcpy(&ph, buf + eh.e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
        if (!inside(ph.p_offset, ph.p_filesz, 1, size))
            return bad(msg, msglen, "segment %u (type %#x, bytes %llu to %llu) lies past the end of the file (%zu bytes)", i,
                       ph.p_type, (unsigned long long)ph.p_offset, (unsigned long long)ph.p_offset + ph.p_filesz, size);
        if (ph.p_type == PT_LOAD) {
            if (ph.p_filesz > ph.p_memsz)
                return bad(msg, msglen, "segment %u holds more bytes in the file than in memory", i);
            ++loads;
        }
    }
    if (loads == 0)
        return bad(msg, msglen, "no loadable segment");

    if (eh.e_shoff != 0 || eh.e_shnum != 0) {
        uint64_t shnum = eh.e_shnum;
        if (eh.e_shentsize != sizeof(Elf64_Shdr))
            return bad(msg, msglen, "bad section header size (%u)", eh.e_shentsize);
        if (!inside(eh.e_shoff, shnum != 0 ? shnum : 1, sizeof(Elf64_Shdr), size))
            return bad(msg, msglen,
                       "the section header table (offset %llu, %llu entries) lies past the end of the file (%zu bytes)",
                       (unsigned long long)eh.e_shoff, (unsigned long long)(shnum != 0 ? shnum : 1), size);
        if (shnum == 0) {
            /* 65280 sections or more: the count is in the first section header */
            Elf64_Shdr sh0;
            memcpy(&sh0, buf + eh.e_shoff, sizeof(sh0));
            if (!inside(eh.e_shoff, sh0.sh_size, sizeof(Elf64_Shdr), size))
                return bad(msg, msglen,
                           "the section header table (offset %llu, %llu entries) lies past the end of the file (%zu bytes)",
                           (unsigned long long)eh.e_shoff, (unsigned long long)sh0.sh_size, size);
        }
    }
    return 0;
}
