#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ta_fuzz::expiry_time(data));
