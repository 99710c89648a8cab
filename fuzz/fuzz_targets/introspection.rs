//! The fuzz input is `query-qmp-schema` output (`load_introspection`). A schema that loads must
//! survive the normalized round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(schema) = qmp_codegen::load_introspection(text) {
        let _ = schema.counts().to_string();
        qmp_fuzz::check_normalized_round_trip(&schema, true);
    }
});
