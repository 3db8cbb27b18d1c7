//! Fuzz target `pop3`: see `mailkeep_fuzz::fuzz_pop3` for the input layout and the
//! properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkeep_fuzz::fuzz_pop3(data));
