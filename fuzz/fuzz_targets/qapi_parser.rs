//! The fuzz input is QAPI schema source text (`parse_qapi_str`), also loaded through
//! `load_str`, which detects the input kind by content. A schema that checks must survive the
//! normalized round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Invalid UTF-8 is the caller's problem (the API takes &str); keep the rest of the input.
    let text = String::from_utf8_lossy(data);
    if let Ok(schema) = qmp_codegen::parse_qapi_str("fuzz.json", &text) {
        let _ = schema.counts().to_string();
        qmp_fuzz::check_normalized_round_trip(&schema, false);
    }
    let _ = qmp_codegen::load_str("fuzz-input", &text);
});
