//! What QEMU's JSON parser accepts, checked before a command is sent.
//!
//! QEMU reads QMP input with a streaming JSON parser (`qobject/json-streamer.c`) that refuses a
//! message once
//!
//! - it nests more than [`MAX_DEPTH`] levels of objects and arrays (the command object itself
//!   is the first level),
//! - it has more than [`MAX_TOKENS`] tokens (`{`, `:`, a string, a number... whitespace is not
//!   a token),
//! - its tokens add up to more than [`MAX_TOKEN_BYTES`] bytes,
//!
//! and its string decoder refuses Unicode noncharacters (U+FDD0 to U+FDEF, and U+xFFFE and
//! U+xFFFF in every plane) and unpaired surrogates, raw or escaped. QEMU answers such input
//! with errors that carry no `id`, several per message (it resumes parsing in the middle of the
//! rejected object and rejects each fragment), and never answers the command itself. A client
//! that sends it cannot tell whose errors those are; this one refuses it locally instead
//! ([`ExecuteError::ExceedsJsonLimit`](crate::ExecuteError::ExceedsJsonLimit)). The numbers are
//! those of QEMU 7.2 and 10.0, checked at the boundary against both by the test suite.
//!
//! The check walks the encoded command once. Short ASCII commands without escapes (nearly all
//! of them) cannot break any rule and skip the walk.

use crate::error::JsonLimit;

/// Deepest nesting QEMU accepts, the command object included.
pub(crate) const MAX_DEPTH: usize = 1024;
/// Most tokens QEMU accepts in one message.
pub(crate) const MAX_TOKENS: usize = 1 << 21;
/// Largest total size of a message's tokens QEMU accepts, in bytes. QEMU refuses a token when
/// the sizes so far, plus this token's, plus one, exceed 64 MiB.
pub(crate) const MAX_TOKEN_BYTES: usize = (64 << 20) - 1;

/// Tokens of the suffix the connection appends, `,"id":N}`: `,` `"id"` `:` the number `}`.
const SUFFIX_TOKENS: usize = 5;

/// Bytes of that suffix's tokens for an id of `id_digits` digits.
const fn suffix_token_bytes(id_digits: usize) -> usize {
    1 + 4 + 1 + id_digits + 1
}

/// Up to this length a text cannot break a size limit: nesting beyond 1024 levels takes 1025
/// opening and 1024 closing brackets.
const FAST_PATH_LEN: usize = 2 * MAX_DEPTH;

/// Checks an encoded command: `{"execute":...` without the closing brace and the id of
/// `id_digits` digits the connection appends.
#[inline]
pub(crate) fn check(text: &[u8], id_digits: usize) -> Result<(), JsonLimit> {
    // A short text can only break the character rule, with an escape (`\uFFFF`, possible in a
    // raw value) or a character encoded with a lead byte of 0xEF or more (every noncharacter
    // is). Without either, nothing to walk.
    if text.len() <= FAST_PATH_LEN && !has_escape_or_high_lead(text) {
        return Ok(());
    }
    check_walking(text, id_digits)
}

/// The full check: walks the text once, counting tokens, their bytes and the nesting.
#[cold]
#[inline(never)]
fn check_walking(text: &[u8], id_digits: usize) -> Result<(), JsonLimit> {
    let mut walk = Walk::default();
    walk.run(text)?;
    let tokens = walk.tokens + SUFFIX_TOKENS;
    if tokens > MAX_TOKENS {
        return Err(JsonLimit::TokenCount {
            count: tokens,
            limit: MAX_TOKENS,
        });
    }
    let bytes = walk.token_bytes + suffix_token_bytes(id_digits);
    if bytes > MAX_TOKEN_BYTES {
        return Err(JsonLimit::TokenSize {
            bytes,
            limit: MAX_TOKEN_BYTES,
        });
    }
    Ok(())
}

/// Whether `text` holds a backslash or a byte of 0xEF or more. Eight bytes at a time: every
/// command passes here, most of them a few dozen bytes of ASCII.
#[inline]
fn has_escape_or_high_lead(text: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word_has = |w: u64| {
        // Bytes of 0xEF or more: the high bit set, and the low seven bits plus 0x11 carry
        // into it (no carry crosses bytes: each low part is at most 0x7F + 0x11).
        let high_lead = w & HIGH & ((w & !HIGH) + 0x11 * ONES);
        // Bytes equal to `\`: zero bytes of `w ^ '\'...` (the classic test; exact for "any").
        let x = w ^ (u64::from(b'\\') * ONES);
        let backslash = x.wrapping_sub(ONES) & !x & HIGH;
        high_lead | backslash != 0
    };
    let word_at = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&text[at..at + 8]);
        word_has(u64::from_le_bytes(word))
    };
    if text.len() < 8 {
        return text.iter().any(|&b| b >= 0xEF || b == b'\\');
    }
    let mut at = 0;
    while at + 8 <= text.len() {
        if word_at(at) {
            return true;
        }
        at += 8;
    }
    // The rest, as the last eight bytes (overlapping some already checked).
    at < text.len() && word_at(text.len() - 8)
}

/// Counts while walking valid JSON text (what serde_json writes, raw values included).
#[derive(Default)]
struct Walk {
    depth: usize,
    tokens: usize,
    token_bytes: usize,
}

impl Walk {
    fn run(&mut self, text: &[u8]) -> Result<(), JsonLimit> {
        let mut i = 0;
        while i < text.len() {
            let start = i;
            match text[i] {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    i += 1;
                    continue;
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(JsonLimit::NestingDepth {
                            depth: self.depth + max_further_depth(&text[i + 1..]),
                            limit: MAX_DEPTH,
                        });
                    }
                    i += 1;
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    i += 1;
                }
                b':' | b',' => i += 1,
                b'"' => i = string_end(text, i + 1)?,
                // A number or a keyword: one token up to the next delimiter.
                _ => {
                    i += 1;
                    while i < text.len()
                        && !matches!(
                            text[i],
                            b',' | b':' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'
                        )
                    {
                        i += 1;
                    }
                }
            }
            self.tokens += 1;
            self.token_bytes += i - start;
        }
        Ok(())
    }
}

/// How much deeper the rest of `text` goes than where it starts (for the error message only).
fn max_further_depth(text: &[u8]) -> usize {
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while i < text.len() {
        match text[i] {
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                // Skip the string; an invalid character does not matter here.
                let mut j = i + 1;
                while j < text.len() && text[j] != b'"' {
                    j += if text[j] == b'\\' { 2 } else { 1 };
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    max
}

/// Finds the end of the string whose contents start at `i` (after the opening quote) and
/// checks its characters. Returns the index after the closing quote.
fn string_end(text: &[u8], mut i: usize) -> Result<usize, JsonLimit> {
    loop {
        let Some(off) = memchr::memchr2(b'"', b'\\', &text[i..]) else {
            check_raw(&text[i..])?;
            return Ok(text.len());
        };
        check_raw(&text[i..i + off])?;
        i += off;
        if text[i] == b'"' {
            return Ok(i + 1);
        }
        // An escape: only \u can denote a character QEMU refuses.
        if text.get(i + 1) == Some(&b'u') {
            let (code_point, len) = escaped_code_point(&text[i..]);
            if !is_valid(code_point) {
                return Err(JsonLimit::InvalidCharacter { code_point });
            }
            i += len;
        } else {
            i += 2;
        }
    }
}

/// The character a `\uXXXX` escape (with its low surrogate, if paired) denotes, and the
/// length of the escape. An unpaired surrogate is returned as itself (and refused).
fn escaped_code_point(esc: &[u8]) -> (u32, usize) {
    let hex = |at: usize| {
        esc.get(at..at + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    let Some(first) = hex(2) else {
        return (0, 2); // not valid JSON; serde_json never writes it
    };
    if (0xD800..0xDC00).contains(&first) && esc.get(6..8) == Some(b"\\u") {
        if let Some(low @ 0xDC00..=0xDFFF) = hex(8) {
            return (0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00), 12);
        }
    }
    (first, 6)
}

/// Checks unescaped string contents: only non-ASCII characters can be refused.
fn check_raw(run: &[u8]) -> Result<(), JsonLimit> {
    if run.is_ascii() {
        return Ok(());
    }
    // Valid UTF-8: it comes from Rust strings and serde_json.
    for c in String::from_utf8_lossy(run).chars() {
        if !is_valid(u32::from(c)) {
            return Err(JsonLimit::InvalidCharacter {
                code_point: u32::from(c),
            });
        }
    }
    Ok(())
}

/// Whether QEMU's string decoder accepts this character: no noncharacter, no surrogate.
fn is_valid(cp: u32) -> bool {
    !(cp > 0x10FFFF
        || (0xFDD0..=0xFDEF).contains(&cp)
        || cp & 0xFFFE == 0xFFFE
        || (0xD800..=0xDFFF).contains(&cp))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids of the length connections start with.
    const DIGITS: usize = 6;

    fn check_(text: &[u8]) -> Result<(), JsonLimit> {
        check(text, DIGITS)
    }

    /// An encoded command as the client builds it: no closing brace, no id.
    fn command(args: &str) -> Vec<u8> {
        format!(r#"{{"execute":"x","arguments":{args}"#).into_bytes()
    }

    /// Nesting `n` levels inside the arguments object.
    fn nested(n: usize) -> String {
        format!(r#"{{"a":{}{}}}"#, "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn fast_test_finds_backslashes_and_high_lead_bytes() {
        for len in 0..40 {
            for at in 0..len {
                for (byte, expect) in [
                    (b'\\', true),
                    (0xEF, true),
                    (0xF4, true),
                    (0xFF, true),
                    (0xEE, false),
                    (0xC3, false),
                    (0x80, false),
                    (b'[', false),
                    (0x5B, false),
                    (0x5D, false),
                    (0x7F, false),
                ] {
                    let mut text = vec![b'a'; len];
                    text[at] = byte;
                    assert_eq!(
                        has_escape_or_high_lead(&text),
                        expect,
                        "{byte:#x} at {at} of {len}"
                    );
                }
            }
            assert!(!has_escape_or_high_lead(&vec![0xEE; len]));
            assert!(!has_escape_or_high_lead(&vec![0x5B; len]));
        }
    }

    #[test]
    fn ordinary_commands_pass() {
        assert_eq!(check_(br#"{"execute":"query-status""#), Ok(()));
        assert_eq!(
            check_(&command(
                r#"{"path":"/machine","s":"caf\u00e9 \"q\" é ☃ 😀"}"#
            )),
            Ok(())
        );
        assert_eq!(
            check_(&command(
                r#"{"n":-1.5e10,"t":true,"f":false,"z":null,"e":[],"o":{}}"#
            )),
            Ok(())
        );
    }

    #[test]
    fn nesting_boundary() {
        // The command object is level 1 and the arguments object level 2, so the arguments
        // may hold 1022 more levels.
        assert_eq!(check_(&command(&nested(1022))), Ok(()));
        assert_eq!(
            check_(&command(&nested(1023))),
            Err(JsonLimit::NestingDepth {
                depth: 1025,
                limit: 1024
            })
        );
        match check_(&command(&nested(1100))) {
            Err(JsonLimit::NestingDepth { depth, .. }) => assert_eq!(depth, 1102),
            other => panic!("{other:?}"),
        }
        // Whitespace and brackets inside strings do not count.
        let spaced = format!(
            r#"{{ "a" : "[[[[", "b": {}{} }}"#,
            "[ ".repeat(1022),
            " ]".repeat(1022)
        );
        assert_eq!(check_(&command(&spaced)), Ok(()));
    }

    /// Arguments `{"a":[{},0,0,...]}` with `k` zeros: 20 + 2k tokens in all (the command's
    /// 11 up to `[`, `{` `}` `,`, the zeros and their commas, `]` `}`, and the id's 5).
    fn token_args(k: usize, extra_object: bool) -> Vec<u8> {
        let zeros = vec!["0"; k].join(",");
        let more = if extra_object { "{}," } else { "" };
        command(&format!(r#"{{"a":[{{}},{more}{zeros}]}}"#))
    }

    #[test]
    fn token_count_boundary() {
        let k = (MAX_TOKENS - 20) / 2;
        let at = token_args(k, false);
        let mut w = Walk::default();
        w.run(&at).unwrap();
        assert_eq!(w.tokens + SUFFIX_TOKENS, MAX_TOKENS);
        assert_eq!(check_(&at), Ok(()));
        // One zero becomes `{}`: one token more.
        assert_eq!(
            check_(&token_args(k - 1, true)),
            Err(JsonLimit::TokenCount {
                count: MAX_TOKENS + 1,
                limit: MAX_TOKENS
            })
        );
    }

    #[test]
    fn token_size_boundary() {
        // One long string: the tokens besides it are fixed, so find the string length that
        // puts the total exactly at the limit.
        let probe = command(r#"{"a":""}"#);
        let mut w = Walk::default();
        w.run(&probe).unwrap();
        let fixed = w.token_bytes + suffix_token_bytes(DIGITS);
        let n = MAX_TOKEN_BYTES - fixed;
        let at = command(&format!(r#"{{"a":"{}"}}"#, "a".repeat(n)));
        assert_eq!(check_(&at), Ok(()));
        let over = command(&format!(r#"{{"a":"{}"}}"#, "a".repeat(n + 1)));
        assert_eq!(
            check_(&over),
            Err(JsonLimit::TokenSize {
                bytes: MAX_TOKEN_BYTES + 1,
                limit: MAX_TOKEN_BYTES
            })
        );
        // Whitespace is free.
        let spaced = command(&format!(r#"{{ "a" :  "{}" }}"#, "a".repeat(n)));
        assert_eq!(check_(&spaced), Ok(()));
    }

    #[test]
    fn characters_qemu_refuses() {
        for (s, cp) in [
            ("\u{FFFF}", 0xFFFF),
            ("\u{FFFE}", 0xFFFE),
            ("x\u{FDD0}", 0xFDD0),
            ("\u{FDEF}", 0xFDEF),
            ("\u{1FFFF}", 0x1FFFF),
            ("\u{10FFFE}", 0x10FFFE),
        ] {
            let json = serde_json::to_string(&serde_json::json!({ "s": s })).unwrap();
            assert_eq!(
                check_(&command(&json)),
                Err(JsonLimit::InvalidCharacter { code_point: cp }),
                "{s:?}"
            );
        }
        for (escaped, cp) in [
            (r"\uffff", 0xFFFF),
            (r"\uD800", 0xD800),
            (r"\uDC00", 0xDC00),
            (r"\ud800\u0041", 0xD800),
            (r"\ud83f\udffe", 0x1FFFE),
        ] {
            let json = format!(r#"{{"s":"a{escaped}b"}}"#);
            assert_eq!(
                check_(&command(&json)),
                Err(JsonLimit::InvalidCharacter { code_point: cp }),
                "{escaped}"
            );
        }
        for fine in [
            r"\u0000",
            r"\ud83d\ude00",
            r"\ufdcf",
            r"\ufdf0",
            r"\ufffd",
            r#"\"\\\/\b\f\n\r\t"#,
        ] {
            let json = format!(r#"{{"s":"{fine}"}}"#);
            assert_eq!(check_(&command(&json)), Ok(()), "{fine}");
        }
    }
}
