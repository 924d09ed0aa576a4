/* What the fuzz targets share. Each target defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize); built with clang -fsanitize=fuzzer it is a libFuzzer binary, built
 * with fuzz/replay.c it is a plain program that runs it once per file of its corpus and
 * regression inputs (what `make test` does, without clang).
 *
 * A target treats any input as legitimate: it must never crash, leak or break an invariant of
 * the code under test. FUZZ_CHECK is for those invariants: it aborts, which libFuzzer reports
 * as a crash and keeps the input, whether or not NDEBUG is defined. */
#ifndef SLUICE_FUZZ_H
#define SLUICE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
