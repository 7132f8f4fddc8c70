// Declarations only (include/CLibFuzzer.h); SwiftPM needs a source file in every C target.
