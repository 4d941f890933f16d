/*
 * core/elf_check.c: a plugin copy is checked before dlopen maps it. The real probe plugin of this
 * build is the sample: it passes whole, every shorter prefix of it is refused (its section header
 * table ends the file), and each header field the check reads is refused when it lies.
 */
#include <elf.h>
#include "unit.h"
#include "../../core/forum.h"

typedef struct sample {
    unsigned char *bytes;
    size_t size;
} sample_t;

static int setup(void **state)
{
    char build[PATH_MAX], path[PATH_MAX + 32];
    sample_t *s = calloc(1, sizeof(*s));
    unit_build_dir(build, sizeof(build));
    snprintf(path, sizeof(path), "%s/t-plugins/probe.so", build);
    if ((s->bytes = (unsigned char *)unit_slurp(path, &s->size)) == NULL)
        unit_fail("cannot read %s", path);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    sample_t *s = *state;
    free(s->bytes);
    free(s);
    return 0;
}

static Elf64_Ehdr header_of(const sample_t *s)
{
    Elf64_Ehdr eh;
    memcpy(&eh, s->bytes, sizeof(eh));
    return eh;
}

/* Checks a copy of the sample whose header was changed by `edit`; returns the message (static). */
static const char *check_edited(const sample_t *s, void (*edit)(Elf64_Ehdr *eh, unsigned char *bytes))
{
    static char msg[512];
    unsigned char *copy = malloc(s->size);
    Elf64_Ehdr eh;
    memcpy(copy, s->bytes, s->size);
    memcpy(&eh, copy, sizeof(eh));
    edit(&eh, copy);
    memcpy(copy, &eh, sizeof(eh));
    msg[0] = '\0';
    int ret = forum_elf_check(copy, s->size, msg, sizeof(msg));
    free(copy);
    return ret == 0 ? NULL : msg;
}

static void expect_refused(const sample_t *s, void (*edit)(Elf64_Ehdr *, unsigned char *), const char *why)
{
    const char *msg = check_edited(s, edit);
    if (msg == NULL)
        unit_fail("accepted, expected: %s", why);
    if (strstr(msg, why) == NULL)
        unit_fail("refused with \"%s\", expected \"%s\"", msg, why);
}

static void test_the_whole_plugin_passes(void **state)
{
    sample_t *s = *state;
    char msg[512] = "";
    if (forum_elf_check(s->bytes, s->size, msg, sizeof(msg)) != 0)
        unit_fail("refused: %s", msg);
}

static void test_every_shorter_prefix_is_refused(void **state)
{
    sample_t *s = *state;
    char msg[512];
    for (size_t len = 0; len != s->size; ++len)
        if (forum_elf_check(s->bytes, len, msg, sizeof(msg)) == 0)
            unit_fail("the first %zu of %zu bytes were accepted", len, s->size);
}

static void no_magic(Elf64_Ehdr *eh, unsigned char *b)
{
    (void)b;
    eh->e_ident[EI_MAG1] = 'X';
}
static void class32(Elf64_Ehdr *eh, unsigned char *b)
{
    (void)b;
    eh->e_ident[EI_CLASS] = ELFCLASS32;
}
static void big_endian(Elf64_Ehdr *eh, unsigned char *b)
{
    (void)b;
    eh->e_ident[EI_DATA] = ELFDATA2MSB;
}
static void executable(Elf64_Ehdr *eh, unsigned char *b)
{
    (void)b;
    eh->e_type = ET_EXEC;
}
static void relocatable(Elf64_Ehdr *eh, unsigned char *b)
{
    (void)b;
    eh->e_type = ET_REL;
}
static void other_machine(Elf64_Ehdr *eh, unsigned char *b)
{
    (void)b;
    eh->e_machine = eh->e_machine == EM_ARM ? EM_386 : EM_ARM;
}
static void phentsize(Elf64_Ehdr *eh, unsigned char *b)
{
    (void)b;
    eh->e_phentsize = 32;
}
static void no_phdrs(Elf64_Ehdr *eh, unsigned char *b)
{
    (void)b;
    eh->e_phnum = 0;
}
static void phoff_past_end(Elf64_Ehdr *eh, unsigned char *b)
{
    (void)b;
    eh->e_phoff = 1u << 30;
}
static void phoff_wraps(Elf64_Ehdr *eh, unsigned char *b)
{
    (void)b;
    eh->e_phoff = UINT64_MAX - 8;
}
static void shoff_past_end(Elf64_Ehdr *eh, unsigned char *b)
{
    (void)b;
    eh->e_shoff += 64;
}
static void shentsize(Elf64_Ehdr *eh, unsigned char *b)
{
    (void)b;
    eh->e_shentsize = 40;
}

/* the first PT_LOAD of the sample, edited in place */
static Elf64_Phdr *first_load(Elf64_Ehdr *eh, unsigned char *b, Elf64_Phdr *ph)
{
    for (unsigned i = 0; i != eh->e_phnum; ++i) {
        memcpy(ph, b + eh->e_phoff + i * sizeof(*ph), sizeof(*ph));
        if (ph->p_type == PT_LOAD)
            return (Elf64_Phdr *)(b + eh->e_phoff + i * sizeof(*ph));
    }
    return NULL;
}
static void segment_past_end(Elf64_Ehdr *eh, unsigned char *b)
{
    Elf64_Phdr ph, *at = first_load(eh, b, &ph);
    ph.p_filesz = 1u << 30;
    ph.p_memsz = 1u << 30;
    memcpy(at, &ph, sizeof(ph));
}
static void segment_wraps(Elf64_Ehdr *eh, unsigned char *b)
{
    Elf64_Phdr ph, *at = first_load(eh, b, &ph);
    ph.p_offset = UINT64_MAX - 16;
    memcpy(at, &ph, sizeof(ph));
}
static void more_in_file_than_memory(Elf64_Ehdr *eh, unsigned char *b)
{
    Elf64_Phdr ph, *at = first_load(eh, b, &ph);
    ph.p_memsz = ph.p_filesz - 1;
    memcpy(at, &ph, sizeof(ph));
}

static void test_each_lying_field_is_refused(void **state)
{
    sample_t *s = *state;
    Elf64_Ehdr eh = header_of(s);
    assert_int_equal(eh.e_type, ET_DYN);
    expect_refused(s, no_magic, "no ELF magic");
    expect_refused(s, class32, "not a 64-bit ELF file");
    expect_refused(s, big_endian, "byte order");
    expect_refused(s, executable, "not a shared object");
    expect_refused(s, relocatable, "not a shared object");
    expect_refused(s, other_machine, "built for another machine");
    expect_refused(s, phentsize, "bad program header table");
    expect_refused(s, no_phdrs, "bad program header table");
    expect_refused(s, phoff_past_end, "program header table");
    expect_refused(s, phoff_wraps, "program header table");
    expect_refused(s, segment_past_end, "past the end of the file");
    expect_refused(s, segment_wraps, "past the end of the file");
    expect_refused(s, more_in_file_than_memory, "more bytes in the file than in memory");
    expect_refused(s, shoff_past_end, "section header table");
    expect_refused(s, shentsize, "bad section header size");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_whole_plugin_passes),
        cmocka_unit_test(test_every_shorter_prefix_is_refused),
        cmocka_unit_test(test_each_lying_field_is_refused),
    };
    return cmocka_run_group_tests_name("elf_check", tests, setup, teardown);
}
