//! Fuzz target `date`: see `mailkeep_fuzz::fuzz_date` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkeep_fuzz::fuzz_date(data));
