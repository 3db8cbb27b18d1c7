//! Fuzz target `endpoint`: see `mailkeep_fuzz::fuzz_endpoint` for the input layout and the
//! properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkeep_fuzz::fuzz_endpoint(data));
