#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bandwidth2mqtt::fuzzing::asus_live(data));
