#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| seglog_tests::fuzz_entry::log_dir(data));
