//! Compiled rules and their evaluation against one event.
//!
//! Case-insensitive string patterns are stored lowercased and compared with
//! the event's lowercased field values, which the engine computes once per
//! event and shares across all rules (see `engine.rs`).

use crate::schema::EventFields;
use std::borrow::Cow;
use std::net::IpAddr;

/// How a string pattern is anchored. `Glob` holds `*`/`?` wildcards.
#[derive(Clone, Debug, PartialEq)]
pub enum StrKind {
    Exact,
    Prefix,
    Suffix,
    Contains,
    Glob(Vec<GlobToken>),
    /// `*` alone: any value, including empty (but not an absent field).
    Any,
}

/// One piece of a wildcard pattern.
#[derive(Clone, Debug, PartialEq)]
pub enum GlobToken {
    Literal(String),
    /// `*`: any run of characters.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Numeric comparison operators (`gt`, `gte`, `lt`, `lte`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// One value test on one field.
#[derive(Clone, Debug)]
pub enum Matcher {
    /// A string test; `text` is lowercased unless `cased`.
    Str {
        kind: StrKind,
        text: String,
        cased: bool,
    },
    Regex(regex::Regex),
    /// Sigma `null`: the field is absent or empty.
    Null,
    /// `exists`: whether the field is present.
    Exists(bool),
    Cidr {
        network: IpAddr,
        prefix: u8,
    },
    Number(Cmp, f64),
    /// `fieldref`: compare with another field of the same event.
    FieldRef {
        other: usize,
        kind: StrKind,
        cased: bool,
    },
}

/// Where a field test looks: one field, or every field (Sigma keywords).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Field(usize),
    AnyField,
}

/// `field|mods: values`: the values are OR-ed, or AND-ed with `all`.
#[derive(Clone, Debug)]
pub struct FieldTest {
    pub target: Target,
    pub matchers: Vec<Matcher>,
    pub all: bool,
}

/// A detection item: OR over its maps (a list of maps), each map the AND of
/// its field tests.
#[derive(Clone, Debug)]
pub struct Selection {
    pub name: String,
    pub any_of: Vec<Vec<FieldTest>>,
}

/// A compiled condition over selection indices.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Selection(usize),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// The event as the matchers see it: original values (read through the
/// event) and lowercased values (computed once per event into reused buffers).
#[derive(Clone, Copy)]
pub struct EventView<'a> {
    pub event: &'a dyn EventFields,
    pub lowered: &'a LoweredFields,
}

impl<'a> EventView<'a> {
    pub fn original(&self, index: usize) -> Option<&'a str> {
        self.event.get(index)
    }

    pub fn lowered(&self, index: usize) -> Option<&'a str> {
        self.lowered.get(index)
    }

    pub fn field_count(&self) -> usize {
        self.event.logsource().fields().len()
    }
}

impl std::fmt::Debug for EventView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventView")
            .field("lowered", self.lowered)
            .finish_non_exhaustive()
    }
}

/// Each field of one event, lowercased. The buffers are kept across events
/// so that lowercasing does not allocate once they have grown (only a
/// non-ASCII value allocates, for `str::to_lowercase`'s final-sigma rule).
#[derive(Debug, Default)]
pub struct LoweredFields {
    text: Vec<String>,
    present: Vec<bool>,
}

impl LoweredFields {
    /// Lowercases the fields of `event` for which `wanted` is true (all
    /// fields when `wanted` is `None`); the others read as absent.
    pub fn fill(&mut self, event: &dyn EventFields, wanted: Option<&[bool]>) {
        let count = event.logsource().fields().len();
        self.text.resize_with(count, String::new);
        self.present.clear();
        self.present.resize(count, false);
        for (index, (buffer, present)) in self
            .text
            .iter_mut()
            .zip(self.present.iter_mut())
            .enumerate()
        {
            buffer.clear();
            if !wanted.is_none_or(|w| w.get(index).copied().unwrap_or(false)) {
                continue;
            }
            if let Some(value) = event.get(index) {
                *present = true;
                lowercase_into(value, buffer);
            }
        }
    }

    pub fn get(&self, index: usize) -> Option<&str> {
        match self.present.get(index) {
            Some(true) => self.text.get(index).map(String::as_str),
            _ => None,
        }
    }
}

/// Lowercases without allocating when the text has no uppercase letters.
pub fn lowercase(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        }
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// [`lowercase`] into `out` (appended), reusing its allocation.
pub fn lowercase_into(text: &str, out: &mut String) {
    if text.is_ascii() {
        let start = out.len();
        out.push_str(text);
        if let Some(tail) = out.get_mut(start..) {
            tail.make_ascii_lowercase();
        }
    } else if text.contains('Σ') {
        // Not per char: `to_lowercase` maps a word-final sigma differently.
        out.push_str(&text.to_lowercase());
    } else {
        // Without a capital sigma, `to_lowercase` maps each char on its own:
        // the same result, without allocating a temporary string (values
        // such as "Microsoft® Windows®" are common).
        for c in text.chars() {
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.extend(c.to_lowercase());
            }
        }
    }
}

impl Expr {
    /// Evaluates the condition; `selection` answers for each selection index.
    pub fn eval(&self, selection: &mut dyn FnMut(usize) -> bool) -> bool {
        match self {
            Expr::Selection(i) => selection(*i),
            Expr::Not(inner) => !inner.eval(selection),
            Expr::And(parts) => parts.iter().all(|p| p.eval(selection)),
            Expr::Or(parts) => parts.iter().any(|p| p.eval(selection)),
        }
    }
}

impl Selection {
    pub fn matches(&self, view: &EventView<'_>) -> bool {
        self.any_of
            .iter()
            .any(|tests| tests.iter().all(|t| t.matches(view)))
    }
}

impl FieldTest {
    pub fn matches(&self, view: &EventView<'_>) -> bool {
        match self.target {
            Target::Field(index) => self.matches_field(view, index),
            // Keywords: the value may occur in any field.
            Target::AnyField => (0..view.field_count()).any(|i| self.matches_field(view, i)),
        }
    }

    fn matches_field(&self, view: &EventView<'_>, index: usize) -> bool {
        let mut one = |m: &Matcher| m.matches(view, index);
        if self.all {
            self.matchers.iter().all(&mut one)
        } else {
            self.matchers.iter().any(&mut one)
        }
    }
}

impl Matcher {
    /// Tests field `index` of the event.
    pub fn matches(&self, view: &EventView<'_>, index: usize) -> bool {
        let original = view.original(index);
        match self {
            Matcher::Null => original.is_none_or(str::is_empty),
            Matcher::Exists(expected) => original.is_some() == *expected,
            Matcher::Str { kind, text, cased } => {
                let value = if *cased {
                    original
                } else {
                    view.lowered(index)
                };
                value.is_some_and(|v| str_match(kind, text, v))
            }
            Matcher::Regex(re) => original.is_some_and(|v| re.is_match(v)),
            Matcher::Cidr { network, prefix } => original
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
                .is_some_and(|ip| in_network(ip, *network, *prefix)),
            Matcher::Number(cmp, bound) => original
                .and_then(|v| v.trim().parse::<f64>().ok())
                .is_some_and(|n| match cmp {
                    Cmp::Gt => n > *bound,
                    Cmp::Gte => n >= *bound,
                    Cmp::Lt => n < *bound,
                    Cmp::Lte => n <= *bound,
                }),
            Matcher::FieldRef { other, kind, cased } => {
                let pick = |i: usize| {
                    if *cased {
                        view.original(i)
                    } else {
                        view.lowered(i)
                    }
                };
                match (pick(index), pick(*other)) {
                    (Some(value), Some(reference)) => str_match(kind, reference, value),
                    _ => false,
                }
            }
        }
    }
}

/// Tests `value` against `text` anchored by `kind`.
pub fn str_match(kind: &StrKind, text: &str, value: &str) -> bool {
    match kind {
        StrKind::Exact => value == text,
        StrKind::Prefix => value.starts_with(text),
        StrKind::Suffix => value.ends_with(text),
        StrKind::Contains => value.contains(text),
        StrKind::Any => true,
        StrKind::Glob(tokens) => glob_match(tokens, value),
    }
}

/// Wildcard matching with backtracking to the last `*` only, which is
/// complete for `*`/`?` patterns and linear in practice.
pub fn glob_match(tokens: &[GlobToken], value: &str) -> bool {
    let mut ti = 0;
    let mut pos = 0;
    let mut star: Option<(usize, usize)> = None;
    loop {
        match tokens.get(ti) {
            Some(GlobToken::Star) => {
                ti += 1;
                star = Some((ti, pos));
                continue;
            }
            Some(GlobToken::Literal(lit))
                if value
                    .get(pos..)
                    .is_some_and(|rest| rest.starts_with(lit.as_str())) =>
            {
                ti += 1;
                pos += lit.len();
                continue;
            }
            Some(GlobToken::One) => {
                if let Some(c) = value.get(pos..).and_then(|rest| rest.chars().next()) {
                    ti += 1;
                    pos += c.len_utf8();
                    continue;
                }
            }
            None if pos == value.len() => return true,
            _ => {}
        }
        // Mismatch: let the last `*` swallow one more character, if any.
        match star {
            Some((resume, start)) => {
                match value.get(start..).and_then(|rest| rest.chars().next()) {
                    Some(c) => {
                        let next = start + c.len_utf8();
                        star = Some((resume, next));
                        ti = resume;
                        pos = next;
                    }
                    None => return false,
                }
            }
            None => return false,
        }
    }
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use GlobToken::{Literal as L, One, Star};

    #[test]
    fn glob() {
        let t = vec![L("a".into()), Star, L("b".into()), One, L("c".into())];
        assert!(glob_match(&t, "axxbyc"));
        assert!(glob_match(&t, "abbyc"));
        assert!(!glob_match(&t, "abc"));
        assert!(!glob_match(&t, "axxbycd"));
        assert!(glob_match(&[Star, L("é".into()), One], "xéü"));
        assert!(glob_match(&[Star], ""));
    }

    #[test]
    fn lowercase_into_appends_what_to_lowercase_gives() {
        for text in [
            "C:\\Windows\\CMD.EXE",
            "Microsoft® Windows® Operating System",
            "İSTANBUL ẞ Ǆ",
            "ΟΔΟΣ ΣΟΦΟΣ",
            "οδοσ ΟΔΟ",
            "",
        ] {
            let mut out = String::from("kept|");
            lowercase_into(text, &mut out);
            assert_eq!(out, format!("kept|{}", text.to_lowercase()), "{text:?}");
        }
    }

    #[test]
    fn cidr() {
        let net: IpAddr = "10.0.0.0".parse().expect("ip");
        assert!(in_network("10.1.2.3".parse().expect("ip"), net, 8));
        assert!(!in_network("11.1.2.3".parse().expect("ip"), net, 8));
        assert!(in_network("11.1.2.3".parse().expect("ip"), net, 0));
    }
}
