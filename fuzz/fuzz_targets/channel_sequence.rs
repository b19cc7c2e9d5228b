#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bandwidth2mqtt::fuzzing::channel_sequence(data));
