#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ta_fuzz::inspect_claims(data));
