//! The mock's answer to `query-qmp-schema`: the checked model written back as QEMU's
//! `SchemaInfo` list, so that [`Qmp::supports`](crate::Qmp::supports) and
//! [`Qmp::server_schema`](crate::Qmp::server_schema) work against the mock.
//!
//! Unlike QEMU, type names are not masked (QEMU numbers them); as in QEMU, every integer type
//! is `int` and optional members carry `"default": null`.

use std::collections::BTreeSet;

use qmp_codegen::model::{Arguments, Builtin, Definition, Member, Schema, TypeRef};
use serde_json::{json, Map, Value};

/// The object type every command without arguments or return value refers to (QEMU's name).
const EMPTY: &str = "q_empty";

/// `query-qmp-schema`'s reply for `schema`.
pub(super) fn schema_info(schema: &Schema) -> Value {
    let mut out = Vec::new();
    let mut used = BTreeSet::new();
    out.push(json!({"name": EMPTY, "meta-type": "object", "members": []}));
    for d in &schema.definitions {
        match d {
            Definition::Command(c) => {
                let arg = arguments(
                    &c.arguments,
                    &format!("q_obj_{}-arg", c.name),
                    &mut used,
                    &mut out,
                );
                let ret = match &c.returns {
                    Some(t) => type_name(t, &mut used),
                    None => EMPTY.to_string(),
                };
                let mut e = json!({"name": c.name, "meta-type": "command", "arg-type": arg, "ret-type": ret});
                if c.allow_oob {
                    e["allow-oob"] = json!(true);
                }
                out.push(e);
            }
            Definition::Event(ev) => {
                let arg = arguments(
                    &ev.data,
                    &format!("q_obj_{}-arg", ev.name),
                    &mut used,
                    &mut out,
                );
                out.push(json!({"name": ev.name, "meta-type": "event", "arg-type": arg}));
            }
            Definition::Enum(e) => {
                let values: Vec<&str> = e.values.iter().map(|v| v.name.as_str()).collect();
                let members: Vec<Value> = values.iter().map(|v| json!({"name": v})).collect();
                out.push(json!({"name": e.name, "meta-type": "enum", "values": values, "members": members}));
            }
            Definition::Struct(s) => {
                let members = members(&s.members, &mut used);
                out.push(json!({"name": s.name, "meta-type": "object", "members": members}));
            }
            Definition::Union(u) => {
                let members = members(&u.base_members, &mut used);
                let variants: Vec<Value> = u
                    .branches
                    .iter()
                    .map(|b| json!({"case": b.value, "type": b.ty_name}))
                    .collect();
                out.push(
                    json!({"name": u.name, "meta-type": "object", "members": members,
                                "tag": u.discriminator, "variants": variants}),
                );
            }
            Definition::Alternate(a) => {
                let members: Vec<Value> = a
                    .branches
                    .iter()
                    .map(|b| json!({"type": type_name(&b.ty, &mut used)}))
                    .collect();
                out.push(json!({"name": a.name, "meta-type": "alternate", "members": members}));
            }
        }
    }
    // Built-ins and arrays, once each, as QEMU lists them.
    let mut seen = BTreeSet::new();
    let mut pending: Vec<String> = used.into_iter().collect();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(elem) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
            out.push(json!({"name": name, "meta-type": "array", "element-type": elem}));
            pending.push(elem.to_string());
        } else if let Some(json_type) = builtin_json_type(&name) {
            out.push(json!({"name": name, "meta-type": "builtin", "json-type": json_type}));
        } else if name == "QType" {
            let values = Builtin::QTYPE_VALUES;
            let members: Vec<Value> = values.iter().map(|v| json!({"name": v})).collect();
            out.push(
                json!({"name": name, "meta-type": "enum", "values": values, "members": members}),
            );
        }
    }
    Value::Array(out)
}

fn arguments(
    args: &Arguments,
    implicit: &str,
    used: &mut BTreeSet<String>,
    out: &mut Vec<Value>,
) -> String {
    match args {
        Arguments::None => EMPTY.to_string(),
        Arguments::Type(t) => t.clone(),
        Arguments::Members(m) => {
            let members = members(m, used);
            out.push(json!({"name": implicit, "meta-type": "object", "members": members}));
            implicit.to_string()
        }
    }
}

fn members(members: &[Member], used: &mut BTreeSet<String>) -> Vec<Value> {
    members
        .iter()
        .map(|m| {
            let mut e = Map::new();
            e.insert("name".into(), json!(m.name));
            e.insert("type".into(), json!(type_name(&m.ty, used)));
            if m.optional {
                e.insert("default".into(), Value::Null);
            }
            Value::Object(e)
        })
        .collect()
}

/// The introspection name of `ty` (every integer type is `int`), noting built-ins and arrays.
fn type_name(ty: &TypeRef, used: &mut BTreeSet<String>) -> String {
    let name = match ty {
        TypeRef::Builtin(b) if b.is_integer() => "int".to_string(),
        TypeRef::Builtin(b) => b.name().to_string(),
        TypeRef::Named(n) => return n.clone(),
        TypeRef::Array(e) => format!("[{}]", type_name(e, used)),
    };
    used.insert(name.clone());
    name
}

fn builtin_json_type(name: &str) -> Option<&'static str> {
    Some(match name {
        "str" => "string",
        "int" => "int",
        "number" => "number",
        "bool" => "boolean",
        "null" => "null",
        "any" => "value",
        _ => return None,
    })
}
