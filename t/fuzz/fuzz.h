/*
 * What the fuzz harnesses share. Each harness (t/fuzz/NAME.c) defines LLVMFuzzerTestOneInput and is
 * built twice: with clang's libFuzzer for `make fuzz`, and with t/fuzz/replay.c as its main in the
 * normal and sanitizer builds, where t/05-fuzz-replay.t runs it over t/fuzz/corpus/NAME and
 * t/fuzz/crashes/NAME.
 */
#ifndef FORUM_FUZZ_H
#define FORUM_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * An invariant of the code under test. A broken one aborts, which libFuzzer reports as a crash and
 * saves, and which fails the replay: assert() would vanish under NDEBUG.
 */
#define FUZZ_CHECK(cond)                                                                                                         \
    do {                                                                                                                         \
        if (!(cond)) {                                                                                                           \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);                                         \
            abort();                                                                                                             \
        }                                                                                                                        \
    } while (0)

#endif
