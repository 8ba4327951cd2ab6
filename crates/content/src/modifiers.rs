//! Sigma field modifiers (`Field|contains|all`) and the translation of a
//! field's values into [`Matcher`]s.
//!
//! Semantics follow the Sigma specification and pySigma, the reference
//! implementation: case-insensitive by default; `*`/`?` wildcards with `\`
//! escaping only before `*`, `?` and `\`; `windash` expands a dash or slash
//! that starts a word into `-`, `/`, en dash, em dash and horizontal bar.

use crate::budget::RuleBudget;
use crate::compile::Reason;
use crate::matcher::{Cmp, GlobToken, Matcher, StrKind};
use crate::yaml::{Node, Value};

/// The single kind of test a field item performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchKind {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
    Regex,
    Cidr,
    Exists,
    FieldRef,
    Compare(Cmp),
}

/// Value encodings applied before matching, in the order written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf16Le,
    Utf16Be,
    /// UTF-16 little endian with a byte-order mark.
    Utf16Bom,
    Base64,
    Base64Offset,
}

/// Everything the modifiers of one detection key say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Modifiers {
    pub kind: MatchKind,
    /// `fieldref|contains` and friends: how the referenced value is anchored.
    pub fieldref_anchor: MatchKind,
    pub all: bool,
    pub cased: bool,
    pub windash: bool,
    pub encodings: Vec<Encoding>,
    pub re_ignore_case: bool,
    pub re_multi_line: bool,
    pub re_dot_all: bool,
}

/// Splits `Field|mod|mod` into the field name and its parsed modifiers.
pub fn parse_key(key: &str) -> Result<(&str, Modifiers), Reason> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or_default();
    let mut mods = Modifiers {
        kind: MatchKind::Equals,
        fieldref_anchor: MatchKind::Equals,
        all: false,
        cased: false,
        windash: false,
        encodings: Vec::new(),
        re_ignore_case: false,
        re_multi_line: false,
        re_dot_all: false,
    };
    let set_kind = |mods: &mut Modifiers, kind: MatchKind, name: &str| -> Result<(), Reason> {
        match (mods.kind, kind) {
            (MatchKind::Equals, _) => mods.kind = kind,
            // Sigma v2 allows fieldref to be anchored by contains/startswith/endswith.
            (
                MatchKind::FieldRef,
                MatchKind::Contains | MatchKind::StartsWith | MatchKind::EndsWith,
            ) if mods.fieldref_anchor == MatchKind::Equals => mods.fieldref_anchor = kind,
            (
                MatchKind::Contains | MatchKind::StartsWith | MatchKind::EndsWith,
                MatchKind::FieldRef,
            ) if mods.fieldref_anchor == MatchKind::Equals => {
                mods.fieldref_anchor = mods.kind;
                mods.kind = MatchKind::FieldRef;
            }
            _ => {
                return Err(Reason::UnsupportedModifier {
                    modifier: name.to_owned(),
                    why: "it conflicts with another matching modifier on the same field".into(),
                });
            }
        }
        Ok(())
    };
    for name in parts {
        match name {
            "contains" => set_kind(&mut mods, MatchKind::Contains, name)?,
            "startswith" => set_kind(&mut mods, MatchKind::StartsWith, name)?,
            "endswith" => set_kind(&mut mods, MatchKind::EndsWith, name)?,
            "re" => set_kind(&mut mods, MatchKind::Regex, name)?,
            "cidr" => set_kind(&mut mods, MatchKind::Cidr, name)?,
            "exists" => set_kind(&mut mods, MatchKind::Exists, name)?,
            "fieldref" => set_kind(&mut mods, MatchKind::FieldRef, name)?,
            "gt" => set_kind(&mut mods, MatchKind::Compare(Cmp::Gt), name)?,
            "gte" => set_kind(&mut mods, MatchKind::Compare(Cmp::Gte), name)?,
            "lt" => set_kind(&mut mods, MatchKind::Compare(Cmp::Lt), name)?,
            "lte" => set_kind(&mut mods, MatchKind::Compare(Cmp::Lte), name)?,
            "all" => mods.all = true,
            "cased" => mods.cased = true,
            "windash" => mods.windash = true,
            "wide" | "utf16le" => mods.encodings.push(Encoding::Utf16Le),
            "utf16be" => mods.encodings.push(Encoding::Utf16Be),
            "utf16" => mods.encodings.push(Encoding::Utf16Bom),
            "base64" => mods.encodings.push(Encoding::Base64),
            "base64offset" => mods.encodings.push(Encoding::Base64Offset),
            "i" | "m" | "s" if mods.kind == MatchKind::Regex => match name {
                "i" => mods.re_ignore_case = true,
                "m" => mods.re_multi_line = true,
                _ => mods.re_dot_all = true,
            },
            "i" | "m" | "s" => {
                return Err(Reason::UnsupportedModifier {
                    modifier: name.to_owned(),
                    why: "regular-expression flags must follow `re`".into(),
                });
            }
            "expand" => {
                return Err(Reason::UnsupportedModifier {
                    modifier: name.to_owned(),
                    why: "placeholders need a pipeline configuration that ringside does not have"
                        .into(),
                });
            }
            _ => return Err(Reason::UnknownModifier(name.to_owned())),
        }
    }
    let string_only = !mods.encodings.is_empty() || mods.windash || mods.cased;
    if string_only
        && !matches!(
            mods.kind,
            MatchKind::Equals | MatchKind::Contains | MatchKind::StartsWith | MatchKind::EndsWith
        )
    {
        return Err(Reason::UnsupportedModifier {
            modifier: key.split('|').skip(1).collect::<Vec<_>>().join("|"),
            why: "encoding, windash and cased apply only to plain string matching".into(),
        });
    }
    if mods.encodings.len() > 2 {
        return Err(Reason::UnsupportedModifier {
            modifier: key.split('|').skip(1).collect::<Vec<_>>().join("|"),
            why: "more than two chained encodings".into(),
        });
    }
    Ok((field, mods))
}

/// The most windash positions expanded (5^n variants).
const MAX_WINDASH_POSITIONS: usize = 4;

/// Builds the matchers for one field item's values. `field_index` resolves a
/// `fieldref` target.
pub fn build_matchers(
    values: &[&Node],
    mods: &Modifiers,
    field_index: &dyn Fn(&str) -> Option<usize>,
    budget: &RuleBudget,
) -> Result<Vec<Matcher>, (usize, Reason)> {
    let mut out = Vec::new();
    for node in values {
        let line = node.line;
        let at = |reason: Reason| (line, reason);
        if node.value == Value::Null {
            if mods.kind != MatchKind::Equals {
                return Err(at(Reason::BadValue(
                    "null can only be matched without modifiers".into(),
                )));
            }
            out.push(Matcher::Null);
            continue;
        }
        let text = match node.scalar_text() {
            Some(text) => text,
            None => {
                return Err(at(Reason::BadValue(format!(
                    "a {} is not a value to match",
                    node.kind()
                ))));
            }
        };
        match mods.kind {
            MatchKind::Exists => match node.value {
                Value::Bool(b) => out.push(Matcher::Exists(b)),
                _ => {
                    return Err(at(Reason::BadValue(format!(
                        "exists needs true or false, not `{text}`"
                    ))));
                }
            },
            MatchKind::Compare(cmp) => match text.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => out.push(Matcher::Number(cmp, n)),
                _ => {
                    return Err(at(Reason::BadValue(format!(
                        "`{text}` is not a number to compare with"
                    ))));
                }
            },
            MatchKind::Cidr => {
                out.push(parse_cidr(&text).ok_or_else(|| {
                    at(Reason::BadValue(format!("`{text}` is not a CIDR network")))
                })?)
            }
            MatchKind::FieldRef => {
                let other = field_index(&text)
                    .ok_or_else(|| at(Reason::FieldRefNotProvided(text.clone())))?;
                let kind = match mods.fieldref_anchor {
                    MatchKind::Contains => StrKind::Contains,
                    MatchKind::StartsWith => StrKind::Prefix,
                    MatchKind::EndsWith => StrKind::Suffix,
                    _ => StrKind::Exact,
                };
                out.push(Matcher::FieldRef {
                    other,
                    kind,
                    cased: mods.cased,
                });
            }
            MatchKind::Regex => {
                // Budgeted before anything is built from it.
                budget.value(&text).map_err(at)?;
                budget.spend(1, text.len()).map_err(at)?;
                let regex = regex::RegexBuilder::new(&text)
                    .case_insensitive(mods.re_ignore_case)
                    .multi_line(mods.re_multi_line)
                    .dot_matches_new_line(mods.re_dot_all)
                    // Bound compile-time memory: content is untrusted.
                    .size_limit(1 << 22)
                    .build()
                    .map_err(|e| {
                        at(Reason::BadRegex {
                            pattern: text.clone(),
                            error: first_line(&e.to_string()),
                        })
                    })?;
                out.push(Matcher::Regex(regex));
            }
            MatchKind::Equals
            | MatchKind::Contains
            | MatchKind::StartsWith
            | MatchKind::EndsWith => {
                // A value's expansion is bounded (windash: at most 5^4
                // variants; encodings: 3 each), so it is checked whole.
                budget.value(&text).map_err(at)?;
                let variants = string_variants(&text, mods).map_err(at)?;
                let bytes = variants.iter().map(|t| literal_text(t).len()).sum();
                budget.spend(variants.len(), bytes).map_err(at)?;
                for tokens in variants {
                    out.push(string_matcher(tokens, mods));
                }
            }
        }
    }
    Ok(out)
}

fn first_line(text: &str) -> String {
    text.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .to_owned()
}

/// The token lists a string value stands for after windash and encodings.
fn string_variants(text: &str, mods: &Modifiers) -> Result<Vec<Vec<GlobToken>>, Reason> {
    if mods.encodings.is_empty() {
        let tokens = parse_wildcards(text);
        return if mods.windash {
            windash(tokens)
        } else {
            Ok(vec![tokens])
        };
    }
    // Encoded values are literal: wildcards cannot survive base64.
    let mut values: Vec<Vec<u8>> = if mods.windash {
        windash(vec![GlobToken::Literal(text.to_owned())])?
            .into_iter()
            .map(|t| literal_text(&t).into_bytes())
            .collect()
    } else {
        vec![text.as_bytes().to_vec()]
    };
    let mut is_text = true;
    for encoding in &mods.encodings {
        values = match encoding {
            Encoding::Utf16Le | Encoding::Utf16Be | Encoding::Utf16Bom => {
                let bom = *encoding == Encoding::Utf16Bom;
                let be = *encoding == Encoding::Utf16Be;
                is_text = false;
                values
                    .iter()
                    .map(|v| {
                        let s = String::from_utf8_lossy(v);
                        let mut bytes = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
                        for unit in s.encode_utf16() {
                            bytes.extend(if be {
                                unit.to_be_bytes()
                            } else {
                                unit.to_le_bytes()
                            });
                        }
                        bytes
                    })
                    .collect()
            }
            Encoding::Base64 => {
                is_text = true;
                values.iter().map(|v| base64(v).into_bytes()).collect()
            }
            Encoding::Base64Offset => {
                is_text = true;
                values
                    .iter()
                    .flat_map(|v| base64_offsets(v))
                    .map(String::into_bytes)
                    .collect()
            }
        };
    }
    if !is_text {
        // A UTF-16 value not wrapped in base64 is matched as the string of
        // its bytes taken as characters (NULs included), as pySigma does.
        return Ok(values
            .into_iter()
            .map(|v| {
                vec![GlobToken::Literal(
                    v.iter().map(|&b| char::from(b)).collect(),
                )]
            })
            .collect());
    }
    Ok(values
        .into_iter()
        .map(|v| vec![GlobToken::Literal(String::from_utf8_lossy(&v).into_owned())])
        .collect())
}

fn literal_text(tokens: &[GlobToken]) -> String {
    tokens
        .iter()
        .map(|t| match t {
            GlobToken::Literal(s) => s.as_str(),
            GlobToken::Star => "*",
            GlobToken::One => "?",
        })
        .collect()
}

/// Splits a Sigma string into literals and wildcards. A backslash escapes
/// only `*`, `?` and `\`; before any other character it is a literal
/// backslash (so Windows paths need no doubling).
pub fn parse_wildcards(text: &str) -> Vec<GlobToken> {
    let mut tokens = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&next @ ('*' | '?' | '\\')) => {
                    literal.push(next);
                    chars.next();
                }
                _ => literal.push('\\'),
            },
            '*' | '?' => {
                if !literal.is_empty() {
                    tokens.push(GlobToken::Literal(std::mem::take(&mut literal)));
                }
                tokens.push(if c == '*' {
                    GlobToken::Star
                } else {
                    GlobToken::One
                });
            }
            _ => literal.push(c),
        }
    }
    if !literal.is_empty() {
        tokens.push(GlobToken::Literal(literal));
    }
    tokens
}

const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// pySigma's windash: every `-` or `/` not preceded by a word character and
/// followed by one (regex `\B[-/]\b`) becomes each of the five dashes.
fn windash(tokens: Vec<GlobToken>) -> Result<Vec<Vec<GlobToken>>, Reason> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    // Positions as (token index, char index within the literal).
    let mut positions = Vec::new();
    for (ti, token) in tokens.iter().enumerate() {
        if let GlobToken::Literal(s) = token {
            let chars: Vec<char> = s.chars().collect();
            for (ci, &c) in chars.iter().enumerate() {
                let before_word = ci
                    .checked_sub(1)
                    .and_then(|p| chars.get(p))
                    .is_some_and(|&p| is_word(p));
                let after_word = chars.get(ci + 1).is_some_and(|&n| is_word(n));
                if (c == '-' || c == '/') && !before_word && after_word {
                    positions.push((ti, ci));
                }
            }
        }
    }
    if positions.len() > MAX_WINDASH_POSITIONS {
        return Err(Reason::UnsupportedModifier {
            modifier: "windash".into(),
            why: format!(
                "the value has {} dashes to expand; at most {MAX_WINDASH_POSITIONS} are supported",
                positions.len()
            ),
        });
    }
    let mut variants = vec![tokens];
    for &(ti, ci) in &positions {
        let mut next = Vec::with_capacity(variants.len() * DASHES.len());
        for variant in &variants {
            for dash in DASHES {
                let mut v = variant.clone();
                if let Some(GlobToken::Literal(s)) = v.get_mut(ti) {
                    *s = s
                        .chars()
                        .enumerate()
                        .map(|(i, c)| if i == ci { dash } else { c })
                        .collect();
                }
                next.push(v);
            }
        }
        variants = next;
    }
    Ok(variants)
}

/// Wraps tokens per the match kind, merges runs, lowercases, classifies.
fn string_matcher(tokens: Vec<GlobToken>, mods: &Modifiers) -> Matcher {
    let mut all = Vec::with_capacity(tokens.len() + 2);
    if matches!(mods.kind, MatchKind::Contains | MatchKind::EndsWith) {
        all.push(GlobToken::Star);
    }
    all.extend(tokens);
    if matches!(mods.kind, MatchKind::Contains | MatchKind::StartsWith) {
        all.push(GlobToken::Star);
    }
    let mut merged: Vec<GlobToken> = Vec::with_capacity(all.len());
    for token in all {
        let token = match token {
            GlobToken::Literal(s) if !mods.cased => {
                GlobToken::Literal(crate::matcher::lowercase(&s).into_owned())
            }
            other => other,
        };
        match (merged.last_mut(), token) {
            (Some(GlobToken::Star), GlobToken::Star) => {}
            (Some(GlobToken::Literal(prev)), GlobToken::Literal(s)) => prev.push_str(&s),
            (_, token) => merged.push(token),
        }
    }
    let cased = mods.cased;
    let (kind, text) = match merged.as_slice() {
        [] => (StrKind::Exact, String::new()),
        [GlobToken::Star] => (StrKind::Any, String::new()),
        [GlobToken::Literal(s)] => (StrKind::Exact, s.clone()),
        [GlobToken::Literal(s), GlobToken::Star] => (StrKind::Prefix, s.clone()),
        [GlobToken::Star, GlobToken::Literal(s)] => (StrKind::Suffix, s.clone()),
        [GlobToken::Star, GlobToken::Literal(s), GlobToken::Star] => (StrKind::Contains, s.clone()),
        _ => {
            // The longest literal is what the prefilter can require.
            let longest = merged
                .iter()
                .filter_map(|t| {
                    if let GlobToken::Literal(s) = t {
                        Some(s.clone())
                    } else {
                        None
                    }
                })
                .max_by_key(String::len)
                .unwrap_or_default();
            (StrKind::Glob(merged), longest)
        }
    };
    Matcher::Str { kind, text, cased }
}

fn parse_cidr(text: &str) -> Option<Matcher> {
    let (address, prefix) = text.trim().split_once('/')?;
    let network: std::net::IpAddr = address.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let max = if network.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some(Matcher::Cidr { network, prefix })
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648); a few lines, so no dependency.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let index = usize::try_from((n >> (18 - 6 * i)) & 63).unwrap_or(0);
                out.push(char::from(BASE64.get(index).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// pySigma's base64offset: the three encodings of `value` at byte offsets
/// 0, 1 and 2 of a stream, trimmed to the characters that do not depend on
/// the neighbouring bytes.
fn base64_offsets(value: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    let mut out = Vec::with_capacity(3);
    for (i, start) in START.iter().enumerate() {
        let mut padded = vec![b' '; i];
        padded.extend_from_slice(value);
        let encoded = base64(&padded);
        // End offsets (None, -3, -2) indexed by (len + i) % 3.
        let trim_end = match (value.len() + i) % 3 {
            1 => 3,
            2 => 2,
            _ => 0,
        };
        let end = encoded.len().saturating_sub(trim_end);
        out.push(encoded.get(*start..end).unwrap_or_default().to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        // pySigma's documented example for base64offset of "/bin/bash".
        assert_eq!(
            base64_offsets(b"/bin/bash"),
            ["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]
        );
    }

    #[test]
    fn wildcards_and_escapes() {
        use GlobToken::{Literal as L, One, Star};
        // `\*` escapes the star, so a path ending in a backslash before `*` doubles it.
        assert_eq!(
            parse_wildcards(r"C:\Windows\\*.exe"),
            vec![L(r"C:\Windows\".into()), Star, L(".exe".into())]
        );
        assert_eq!(
            parse_wildcards(r"C:\Windows\*"),
            vec![L(r"C:\Windows*".into())]
        );
        assert_eq!(parse_wildcards(r"a\*b\?c\\d"), vec![L(r"a*b?c\d".into())]);
        assert_eq!(parse_wildcards("a?"), vec![L("a".into()), One]);
        assert_eq!(parse_wildcards(r"trailing\"), vec![L(r"trailing\".into())]);
    }

    #[test]
    fn windash_expands_word_initial_dashes_only() {
        let variants = windash(parse_wildcards(" -param-name /x")).expect("two positions");
        assert_eq!(variants.len(), 25);
        assert!(
            variants
                .iter()
                .any(|v| literal_text(v) == " \u{2013}param-name -x")
        );
        assert!(
            variants
                .iter()
                .all(|v| literal_text(v).contains("param-name"))
        );
    }

    #[test]
    fn key_parsing() {
        let (field, mods) = parse_key("CommandLine|contains|all|windash").expect("valid");
        assert_eq!(field, "CommandLine");
        assert!(mods.all && mods.windash && mods.kind == MatchKind::Contains);
        assert_eq!(
            parse_key("X|contians").map(|_| ()),
            Err(Reason::UnknownModifier("contians".into()))
        );
        assert!(parse_key("X|contains|endswith").is_err());
        assert!(parse_key("X|i").is_err());
        assert!(parse_key("X|re|i|m").is_ok());
        assert!(parse_key("X|re|base64").is_err());
    }
}
