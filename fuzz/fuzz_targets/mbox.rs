//! Fuzz target `mbox`: see `mailkeep_fuzz::fuzz_mbox` for the input layout and the
//! properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkeep_fuzz::fuzz_mbox(data));
