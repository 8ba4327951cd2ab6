//! Sysmon's filter conditions and what each means, as SysmonCommon's
//! `rules.c` implements them (which is what users' configurations were
//! tuned against, where Microsoft's documentation pages say otherwise).
//!
//! Every comparison is case-insensitive: values and patterns are compared
//! in lower case ([`fold`]). [`Condition::matches`] is the definition; the
//! evaluator ([`super::eval`]) reaches the same answers from one automaton
//! pass per field, and a property test holds the two together.

/// A filter's `condition=` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    /// The default: whole-string equality.
    Is,
    IsNot,
    /// Equality with any `;`-separated value.
    IsAny,
    Contains,
    /// Any `;`-separated value is a substring.
    ContainsAny,
    /// Every `;`-separated value is a substring.
    ContainsAll,
    /// The substring is absent.
    Excludes,
    /// Matches only when *none* of the values is present (the opposite of
    /// the documentation's wording; `rules.c` is what runs).
    ExcludesAny,
    /// Matches when *at least one* value is absent (likewise).
    ExcludesAll,
    BeginWith,
    NotBeginWith,
    EndWith,
    NotEndWith,
    /// Case-insensitive string order, not numbers: `"10" less than "9"`.
    LessThan,
    MoreThan,
    /// Equality with the path's last component when the pattern has no
    /// `\`, with the whole path otherwise.
    Image,
}

impl Condition {
    /// Every condition with its name in a configuration.
    pub const ALL: [(&'static str, Condition); 16] = [
        ("is", Condition::Is),
        ("is not", Condition::IsNot),
        ("is any", Condition::IsAny),
        ("contains", Condition::Contains),
        ("contains any", Condition::ContainsAny),
        ("contains all", Condition::ContainsAll),
        ("excludes", Condition::Excludes),
        ("excludes any", Condition::ExcludesAny),
        ("excludes all", Condition::ExcludesAll),
        ("begin with", Condition::BeginWith),
        ("not begin with", Condition::NotBeginWith),
        ("end with", Condition::EndWith),
        ("not end with", Condition::NotEndWith),
        ("less than", Condition::LessThan),
        ("more than", Condition::MoreThan),
        ("image", Condition::Image),
    ];

    /// The condition a `condition=` value names (case-insensitive, as
    /// Sysmon's own parser compares it).
    pub fn parse(name: &str) -> Option<Condition> {
        Condition::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, c)| *c)
    }

    /// The name used in configurations.
    pub fn name(self) -> &'static str {
        Condition::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("is", |(n, _)| n)
    }

    /// Whether the rule value is a `;`-separated list.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            Condition::IsAny
                | Condition::ContainsAny
                | Condition::ContainsAll
                | Condition::ExcludesAny
                | Condition::ExcludesAll
        )
    }

    /// The patterns of a rule value: the list items (empty items dropped)
    /// for list conditions, else the whole value; folded to lower case.
    pub fn patterns(self, value: &str) -> Vec<String> {
        if self.is_list() {
            value
                .split(';')
                .filter(|item| !item.is_empty())
                .map(fold_owned)
                .collect()
        } else {
            vec![fold_owned(value)]
        }
    }

    /// Whether `value` (already folded) satisfies this condition with
    /// `patterns` (from [`Condition::patterns`]).
    pub fn matches(self, value: &str, patterns: &[String]) -> bool {
        let first = patterns.first().map_or("", String::as_str);
        match self {
            Condition::Is => value == first,
            Condition::IsNot => value != first,
            Condition::IsAny => patterns.iter().any(|p| value == p),
            Condition::Contains => value.contains(first),
            Condition::ContainsAny => patterns.iter().any(|p| value.contains(p.as_str())),
            Condition::ContainsAll => patterns.iter().all(|p| value.contains(p.as_str())),
            Condition::Excludes => !value.contains(first),
            Condition::ExcludesAny => !patterns.iter().any(|p| value.contains(p.as_str())),
            Condition::ExcludesAll => !patterns.iter().all(|p| value.contains(p.as_str())),
            Condition::BeginWith => value.starts_with(first),
            Condition::NotBeginWith => !value.starts_with(first),
            Condition::EndWith => value.ends_with(first),
            Condition::NotEndWith => !value.ends_with(first),
            Condition::LessThan => value < first,
            Condition::MoreThan => value > first,
            Condition::Image => image_matches(value, first),
        }
    }
}

/// `image`: the last path component when the pattern names no directory.
pub fn image_matches(value: &str, pattern: &str) -> bool {
    if pattern.contains('\\') {
        value == pattern
    } else {
        value.rsplit('\\').next().unwrap_or(value) == pattern
    }
}

/// Appends `text` in lower case to `out` (ASCII fast path; full Unicode
/// lower-casing otherwise, as Windows' case-insensitive compare covers more
/// than ASCII).
pub fn fold(out: &mut String, text: &str) {
    if text.is_ascii() {
        let start = out.len();
        out.push_str(text);
        if let Some(appended) = out.get_mut(start..) {
            appended.make_ascii_lowercase();
        }
    } else {
        out.extend(text.chars().flat_map(char::to_lowercase));
    }
}

fn fold_owned(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    fold(&mut out, text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(condition: &str, value: &str, rule: &str) -> bool {
        let c = Condition::parse(condition).expect("known condition");
        let mut folded = String::new();
        fold(&mut folded, value);
        c.matches(&folded, &c.patterns(rule))
    }

    #[test]
    fn every_condition_has_one_name() {
        for (name, condition) in Condition::ALL {
            assert_eq!(Condition::parse(name), Some(condition));
            assert_eq!(condition.name(), name);
        }
        assert_eq!(Condition::parse("Begin With"), Some(Condition::BeginWith));
        assert_eq!(Condition::parse("starts with"), None);
    }

    #[test]
    fn is_and_is_not_compare_whole_strings_case_insensitively() {
        assert!(check("is", r"C:\Windows\cmd.EXE", r"c:\windows\CMD.exe"));
        assert!(!check("is", r"C:\Windows\cmd.exe", "cmd.exe"));
        assert!(check("is not", r"C:\Windows\cmd.exe", "cmd.exe"));
        assert!(!check("is not", "CMD.EXE", "cmd.exe"));
        assert!(check("is any", "b", "a;B;c"));
        assert!(!check("is any", "ab", "a;b"));
    }

    #[test]
    fn contains_family() {
        assert!(check("contains", "PowerShell -enc", "SHELL"));
        assert!(!check("contains", "cmd", "shell"));
        assert!(check("contains any", "rundll32 x", "regsvr32;RUNDLL32"));
        assert!(!check("contains any", "notepad", "regsvr32;rundll32"));
        assert!(check(
            "contains all",
            r"C:\Users\a\AppData\x.dll",
            r"c:\users\;\appdata\"
        ));
        assert!(!check(
            "contains all",
            r"C:\Users\a\x.dll",
            r"c:\users\;\appdata\"
        ));
    }

    /// `excludes any` matches only when none of the values is present;
    /// `excludes all` when at least one is absent — rules.c, not the docs.
    #[test]
    fn excludes_family_follows_rules_c() {
        assert!(check("excludes", "notepad", "cmd"));
        assert!(!check("excludes", "CMD.exe", "cmd"));
        // excludes any: one present is enough to fail.
        assert!(check("excludes any", "notepad.exe", "cmd;powershell"));
        assert!(!check("excludes any", "cmd.exe", "cmd;powershell"));
        assert!(!check("excludes any", "cmd powershell", "cmd;powershell"));
        // excludes all: one absent is enough to match.
        assert!(check("excludes all", "cmd.exe", "cmd;powershell"));
        assert!(check("excludes all", "notepad.exe", "cmd;powershell"));
        assert!(!check("excludes all", "cmd powershell", "cmd;POWERSHELL"));
    }

    #[test]
    fn prefixes_and_suffixes() {
        assert!(check("begin with", r"C:\Windows\x", r"c:\windows\"));
        assert!(!check("begin with", r"D:\Windows\x", r"c:\windows\"));
        assert!(check("not begin with", r"D:\Windows\x", r"c:\windows\"));
        assert!(!check("not begin with", r"C:\WINDOWS\x", r"c:\windows\"));
        assert!(check("end with", "a.PS1", ".ps1"));
        assert!(!check("end with", "a.ps1x", ".ps1"));
        assert!(check("not end with", "a.ps1x", ".ps1"));
        assert!(!check("not end with", "A.PS1", ".ps1"));
    }

    /// Strings, not numbers: "10" sorts before "9".
    #[test]
    fn less_and_more_than_compare_strings() {
        assert!(check("less than", "10", "9"));
        assert!(!check("more than", "10", "9"));
        assert!(check("more than", "b", "A"));
        assert!(check("less than", "A", "b"));
        assert!(!check("less than", "b", "B"));
    }

    #[test]
    fn image_compares_the_last_component_unless_the_pattern_has_a_directory() {
        assert!(check("image", r"C:\Windows\System32\CMD.exe", "cmd.exe"));
        assert!(!check("image", r"C:\Windows\System32\xcmd.exe", "cmd.exe"));
        assert!(check("image", r"C:\Windows\cmd.exe", r"c:\windows\cmd.exe"));
        assert!(!check(
            "image",
            r"D:\Windows\cmd.exe",
            r"c:\windows\cmd.exe"
        ));
        assert!(check("image", "cmd.exe", "cmd.exe"));
    }

    #[test]
    fn folding_covers_non_ascii() {
        assert!(check("is", "ÄRGER.EXE", "ärger.exe"));
    }
}
