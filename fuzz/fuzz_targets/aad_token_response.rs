#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ta_fuzz::aad_token_response(data));
