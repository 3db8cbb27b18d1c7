//! Fuzz target `date`: see `mailkeep::fuzzing::fuzz_date` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkeep::fuzzing::fuzz_date(data));
