#![no_main]
// The harness is shared with the corpus test (tests/src/fuzz_harness.rs).
libfuzzer_sys::fuzz_target!(
    init: fenlei_e2e::fuzz_harness::report_caught_panics(),
    |data: &[u8]| fenlei_e2e::fuzz_harness::sync_request(data)
);
