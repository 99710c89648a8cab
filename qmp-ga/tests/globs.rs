//! No name is defined twice across `qmp_ga`'s public modules: with `ambiguous_glob_imports`
//! denied, this file uses every public name through glob imports of `types`, `commands` and the
//! crate root together (the generated `names.rs` lists the schema's names; the crate's own are
//! below), so a name defined twice fails to compile.

#![deny(ambiguous_glob_imports)]
#![allow(deprecated)]

use qmp_ga::commands::*;
use qmp_ga::types::*;
use qmp_ga::*;

include!(concat!(env!("OUT_DIR"), "/names.rs"));

// The crate's own names, present with every schema.
const _: Option<&GuestAgent> = None;
const _: Option<&Call<()>> = None;
const _: Option<&UnknownValue<QType>> = None;
const _: Option<&UnknownVariant<QType>> = None;
const _: Option<&Error> = None;
const _: Option<&ExecOutput> = None;
const _: Option<&ExecuteError> = None;
const _: Option<&ConnectError> = None;
const _: Option<&DecodeError> = None;
const _: Option<&QmpError> = None;
const _: Option<&Version> = None;
const _: usize = FILE_CHUNK;

#[test]
fn the_schema_is_the_guest_agents() {
    // Compiling is the test; and the schema really is the agent's, with all its names.
    assert!(SCHEMA.contains("qga"), "{SCHEMA}");
    const { assert!(GENERATED_NAMES > 100) };
}
