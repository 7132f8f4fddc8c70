#ifndef C_LIB_FUZZER_H
#define C_LIB_FUZZER_H

#include <stddef.h>
#include <stdint.h>

// libFuzzer's own driver (compiler-rt, linked by -sanitize=fuzzer). SwiftPM gives every executable its own
// `main`, so the fuzz target calls this from its `@main` instead of using libFuzzer's `main`.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
