//! Name validity and QEMU's naming conventions.

/// Which naming conventions apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rules {
    /// QEMU 6.0+ (current pragma names): types CamelCase, commands and members lower-case with
    /// `-`, events UPPER_CASE, with the pragma exceptions.
    Modern,
    /// QEMU <= 5.2 (old pragma names): only upper case in member names is restricted.
    Legacy,
    /// Introspection input: QEMU already enforced its rules.
    None,
}

/// Strips the downstream `__RFQDN_` prefix and the `x-` prefix; `None` if the prefix is
/// malformed.
pub(crate) fn stem(name: &str) -> Option<&str> {
    let mut rest = name;
    if let Some(r) = rest.strip_prefix("__") {
        let end = r.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))?;
        if end == 0 || !r[end..].starts_with('_') {
            return None;
        }
        rest = &r[end + 1..];
    }
    Some(rest.strip_prefix("x-").unwrap_or(rest))
}

/// Whether `name` is a valid QAPI name: optional `__RFQDN_` and `x-` prefixes, then a letter
/// (or a digit, for enum values) followed by letters, digits, `-` and `_`.
pub(crate) fn valid_name(name: &str, allow_digit_start: bool) -> bool {
    let Some(s) = stem(name) else { return false };
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || (allow_digit_start && c.is_ascii_digit()) => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// QEMU's C identifier mapping (every character outside `[A-Za-z0-9_]` becomes `_`), used for
/// clash detection.
pub(crate) fn c_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Whether `name` uses the reserved `q_` prefix (after C mapping).
pub(crate) fn reserved_q(name: &str) -> bool {
    c_name(name).starts_with("q_")
}

/// The problem with a type name under the modern rules, if any.
pub(crate) fn camel_problem(name: &str) -> Option<&'static str> {
    let s = stem(name)?;
    let mut chars = s.chars();
    let first_upper = chars.next().is_some_and(|c| c.is_ascii_uppercase());
    let all_alnum = s.chars().all(|c| c.is_ascii_alphanumeric());
    let has_lower = s.chars().any(|c| c.is_ascii_lowercase());
    if first_upper && all_alnum && has_lower {
        None
    } else {
        Some("type names must use CamelCase (start with an upper-case letter, no '-' or '_')")
    }
}

/// The problem with a lower-case name (commands, members, enum values, features), if any.
pub(crate) fn lower_problem(
    name: &str,
    permit_upper: bool,
    permit_underscore: bool,
) -> Option<&'static str> {
    let s = stem(name)?;
    if !permit_upper && s.chars().any(|c| c.is_ascii_uppercase()) {
        return Some("must not use upper case");
    }
    if !permit_underscore && s.contains('_') {
        return Some("must use '-', not '_'");
    }
    None
}

/// The problem with an event name under the modern rules, if any.
pub(crate) fn upper_problem(name: &str) -> Option<&'static str> {
    let s = stem(name)?;
    if s.chars().any(|c| c.is_ascii_lowercase()) || s.contains('-') {
        Some("event names must use UPPER_CASE with '_'")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("query-block", false));
        assert!(valid_name("__org.qemu_x-foo", false));
        assert!(valid_name("x-debug", false));
        assert!(!valid_name("1abc", false));
        assert!(valid_name("2_5", true));
        assert!(!valid_name("a b", false));
        assert!(!valid_name("", false));
        assert!(!valid_name("__bad", false));
        assert_eq!(c_name("a-b.c"), "a_b_c");
        assert!(reserved_q("q-obj"));
        assert!(camel_problem("BlockInfo").is_none());
        assert!(camel_problem("X86CPURegister32").is_none());
        assert!(camel_problem("block-info").is_some());
        assert!(camel_problem("Block_Info").is_some());
        assert!(lower_problem("query_block", false, false).is_some());
        assert!(lower_problem("query_block", false, true).is_none());
        assert!(upper_problem("BLOCK_JOB_COMPLETED").is_none());
        assert!(upper_problem("block-job").is_some());
    }
}
