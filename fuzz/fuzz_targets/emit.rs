//! The fuzz input is a schema (QAPI source, normally; `load_str` also takes the JSON kinds).
//! When it loads and checks, `emit::generate` must return the files or an `EmitError`, never
//! panic: with doc prose for QEMU 2.12 onwards (the defaults), and without prose for a
//! QEMU newer than any version in the schema.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qmp_codegen::emit::{generate, Options};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(schema) = qmp_codegen::load_str("fuzz.json", &text) else {
        return;
    };
    let _ = generate(&schema, &Options::default());
    let _ = generate(
        &schema,
        &Options {
            prose: false,
            oldest_qemu: (99, 0),
            ..Options::default()
        },
    );
});
