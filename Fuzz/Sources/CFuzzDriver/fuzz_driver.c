// The declaration in include/fuzz_driver.h is defined by libFuzzer (linked by -sanitize=fuzzer).
