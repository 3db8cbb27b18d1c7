//! Fuzz target `runconf`: see `mailkeep_fuzz::fuzz_runconf` for the input layout and the
//! properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkeep_fuzz::fuzz_runconf(data));
