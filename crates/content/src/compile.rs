//! Compiling one Sigma rule file into a [`CompiledRule`], validated against
//! the schema: a rule is accepted whole or rejected whole, with the line and a
//! reason that says what to change.

use crate::budget::{Cost, RuleBudget};
use crate::condition;
use crate::matcher::{Expr, FieldTest, Matcher, Selection, StrKind, Target};
use crate::modifiers::{self, MatchKind};
use crate::schema::{Logsource, PROVIDER_FIELD};
use crate::yaml::{self, Node, Value};
use std::fmt;
use std::path::{Path, PathBuf};

/// A rule ready to evaluate.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    pub id: String,
    pub title: String,
    pub level: String,
    pub tags: Vec<String>,
    pub logsource: Logsource,
    pub path: PathBuf,
    pub selections: Vec<Selection>,
    pub condition: Expr,
    /// What it costs the engine (`crate::budget`).
    pub cost: Cost,
}

/// Why a rule was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The rule names a field its logsource does not carry (21 vs 20).
    FieldNotProvided {
        field: String,
        logsource: Logsource,
    },
    /// A `fieldref` value names a field the logsource does not carry.
    FieldRefNotProvided(String),
    UnknownModifier(String),
    UnsupportedModifier {
        modifier: String,
        why: String,
    },
    BadRegex {
        pattern: String,
        error: String,
    },
    BadValue(String),
    MalformedCondition(String),
    UnsupportedLogsource(String),
    /// Not a Sigma rule: invalid YAML or a missing/ill-typed section.
    Malformed(String),
    /// The rule (or the bundle it would join) exceeds a compile budget
    /// (`crate::budget`).
    OverBudget {
        budget: &'static str,
        limit: usize,
        needed: usize,
    },
}

impl Reason {
    /// A short class name for summaries (`by reason: ...`).
    pub fn class(&self) -> &'static str {
        match self {
            Reason::FieldNotProvided { .. } | Reason::FieldRefNotProvided(_) => {
                "field not provided"
            }
            Reason::UnknownModifier(_) => "unknown modifier",
            Reason::UnsupportedModifier { .. } => "unsupported modifier",
            Reason::BadRegex { .. } => "bad regex",
            Reason::BadValue(_) => "bad value",
            Reason::MalformedCondition(_) => "malformed condition",
            Reason::UnsupportedLogsource(_) => "unsupported logsource",
            Reason::Malformed(_) => "malformed rule",
            Reason::OverBudget { .. } => "over budget",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::FieldNotProvided { field, logsource } => write!(
                f,
                "field `{field}` is not provided by ringside for {} (provided: {}); remove the field or retarget the rule",
                logsource.category(),
                logsource
                    .fields()
                    .iter()
                    .map(|d| d.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Reason::FieldRefNotProvided(field) => {
                write!(
                    f,
                    "fieldref names field `{field}`, which this logsource does not provide"
                )
            }
            Reason::UnknownModifier(m) => write!(
                f,
                "unknown modifier `{m}`; check the spelling against the Sigma specification"
            ),
            Reason::UnsupportedModifier { modifier, why } => {
                write!(f, "modifier `{modifier}` is not supported: {why}")
            }
            Reason::BadRegex { pattern, error } => write!(
                f,
                "regular expression `{pattern}` does not compile: {error}"
            ),
            Reason::BadValue(why) => write!(f, "bad value: {why}"),
            Reason::MalformedCondition(why) => write!(f, "malformed condition: {why}"),
            Reason::UnsupportedLogsource(what) => {
                // From the schema's list, so a new logsource is named here.
                let categories: Vec<&str> = Logsource::ALL.iter().map(|l| l.category()).collect();
                let (last, rest) = categories.split_last().unwrap_or((&"", &[]));
                write!(
                    f,
                    "unsupported logsource {what}; ringside supports product windows with category {} or {last}",
                    rest.join(", ")
                )
            }
            Reason::Malformed(why) => write!(f, "not a valid Sigma rule: {why}"),
            Reason::OverBudget {
                budget,
                limit,
                needed,
            } => write!(f, "over budget: {budget}: {needed} (limit {limit})"),
        }
    }
}

/// A rejected rule: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub path: PathBuf,
    pub line: usize,
    pub reason: Reason,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.reason)
    }
}

/// Compiles the rule in `text` (read from `path`, used in messages).
pub fn compile_rule(text: &str, path: &Path) -> Result<CompiledRule, Rejection> {
    let reject = |line: usize, reason: Reason| Rejection {
        path: path.to_owned(),
        line,
        reason,
    };
    let doc = yaml::parse(text).map_err(|e| reject(e.line, Reason::Malformed(e.message)))?;
    if !matches!(doc.value, Value::Map(_)) {
        return Err(reject(
            doc.line,
            Reason::Malformed(format!("the document is a {}, not a mapping", doc.kind())),
        ));
    }
    let text_of = |key: &str| doc.get(key).and_then(Node::scalar_text);
    let title =
        text_of("title").ok_or_else(|| reject(doc.line, Reason::Malformed("no `title`".into())))?;
    let id = text_of("id").unwrap_or_else(|| title.clone());
    let level = text_of("level").unwrap_or_default();
    let tags = match doc.get("tags").map(|n| &n.value) {
        Some(Value::Seq(items)) => items.iter().filter_map(Node::scalar_text).collect(),
        _ => Vec::new(),
    };

    let logsource = logsource(&doc).map_err(|(line, reason)| reject(line, reason))?;
    let detection = doc
        .get("detection")
        .ok_or_else(|| reject(doc.line, Reason::Malformed("no `detection` section".into())))?;
    let Value::Map(entries) = &detection.value else {
        return Err(reject(
            detection.line,
            Reason::Malformed("`detection` is not a mapping".into()),
        ));
    };
    let budget = RuleBudget::default();
    let mut selections = Vec::new();
    let mut condition_node = None;
    for entry in entries {
        match entry.key.as_str() {
            "condition" => condition_node = Some(entry),
            "timeframe" => {
                return Err(reject(
                    entry.line,
                    Reason::MalformedCondition("`timeframe` (correlation) is not supported".into()),
                ));
            }
            name => {
                let any_of = selection(&entry.value, logsource, &budget)
                    .map_err(|(line, reason)| reject(line, reason))?;
                selections.push(Selection {
                    name: name.to_owned(),
                    any_of,
                });
            }
        }
    }
    let condition_entry = condition_node.ok_or_else(|| {
        reject(
            detection.line,
            Reason::MalformedCondition("no `condition`".into()),
        )
    })?;
    let names: Vec<String> = selections.iter().map(|s| s.name.clone()).collect();
    let parse_one = |node: &Node| -> Result<Expr, Rejection> {
        let text = node.scalar_text().ok_or_else(|| {
            reject(
                node.line,
                Reason::MalformedCondition(format!("the condition is a {}", node.kind())),
            )
        })?;
        condition::parse(&text, &names)
            .map_err(|why| reject(node.line, Reason::MalformedCondition(why)))
    };
    // A list of conditions (older rules) means any of them.
    let condition = match &condition_entry.value.value {
        Value::Seq(items) if !items.is_empty() => {
            Expr::Or(items.iter().map(parse_one).collect::<Result<_, _>>()?)
        }
        _ => parse_one(&condition_entry.value)?,
    };
    Ok(CompiledRule {
        id,
        title,
        level,
        tags,
        logsource,
        path: path.to_owned(),
        selections,
        condition,
        cost: budget.cost(),
    })
}

fn logsource(doc: &Node) -> Result<Logsource, (usize, Reason)> {
    let node = doc
        .get("logsource")
        .ok_or((doc.line, Reason::Malformed("no `logsource`".into())))?;
    let field = |key: &str| node.get(key).and_then(Node::scalar_text);
    let (product, category, service) = (field("product"), field("category"), field("service"));
    let describe = format!(
        "(product: {}, category: {}{})",
        product.as_deref().unwrap_or("-"),
        category.as_deref().unwrap_or("-"),
        service
            .as_deref()
            .map(|s| format!(", service: {s}"))
            .unwrap_or_default()
    );
    if product.as_deref() != Some("windows") || service.is_some() {
        return Err((node.line, Reason::UnsupportedLogsource(describe)));
    }
    category
        .as_deref()
        .and_then(Logsource::from_category)
        .ok_or((node.line, Reason::UnsupportedLogsource(describe)))
}

/// A selection: a map (AND of field tests), a list of maps (OR), or
/// keywords (a list of values, or one value, searched in every field).
fn selection(
    node: &Node,
    logsource: Logsource,
    budget: &RuleBudget,
) -> Result<Vec<Vec<FieldTest>>, (usize, Reason)> {
    match &node.value {
        // A map that can never hold (a `Provider_Name` test that is false
        // for this logsource) is left out: an empty list never holds.
        Value::Map(_) => Ok(field_tests(node, logsource, budget)?.into_iter().collect()),
        Value::Seq(items) if items.is_empty() => {
            Err((node.line, Reason::Malformed("empty selection list".into())))
        }
        Value::Seq(items) if items.iter().all(|i| matches!(i.value, Value::Map(_))) => items
            .iter()
            .filter_map(|item| field_tests(item, logsource, budget).transpose())
            .collect(),
        Value::Seq(items) if items.iter().all(|i| i.scalar_text().is_some()) => {
            let values: Vec<&Node> = items.iter().collect();
            Ok(vec![vec![keywords(&values, logsource, budget)?]])
        }
        Value::Str(_) | Value::Int(_) => Ok(vec![vec![keywords(&[node], logsource, budget)?]]),
        _ => Err((
            node.line,
            Reason::Malformed(format!(
                "a selection must be a mapping or a list, not a {}",
                node.kind()
            )),
        )),
    }
}

/// Keywords match anywhere in any field (as a full-text search would).
fn keywords(
    values: &[&Node],
    logsource: Logsource,
    budget: &RuleBudget,
) -> Result<FieldTest, (usize, Reason)> {
    let (_, mut mods) = modifiers::parse_key("").map_err(|r| (0, r))?;
    mods.kind = MatchKind::Contains;
    let matchers =
        modifiers::build_matchers(values, &mods, &|name| logsource.field_index(name), budget)?;
    Ok(FieldTest {
        target: Target::AnyField,
        matchers,
        all: false,
    })
}

/// The field tests of one map (their AND); `None` when the map can never
/// hold. A test of the event's provider ([`Logsource::provider`]) is
/// decided here, once: it holds for every event of the logsource (and is
/// left out of the map) or for none.
fn field_tests(
    node: &Node,
    logsource: Logsource,
    budget: &RuleBudget,
) -> Result<Option<Vec<FieldTest>>, (usize, Reason)> {
    let Value::Map(entries) = &node.value else {
        return Err((node.line, Reason::Malformed("expected a mapping".into())));
    };
    if entries.is_empty() {
        return Err((node.line, Reason::Malformed("empty selection".into())));
    }
    let mut tests = Vec::with_capacity(entries.len());
    // Every entry is still checked when a provider test cannot hold: the
    // rule is refused for a field it names wherever it names it.
    let mut can_hold = true;
    for entry in entries {
        let (field, mods) = modifiers::parse_key(&entry.key).map_err(|r| (entry.line, r))?;
        if field.is_empty() {
            return Err((
                entry.line,
                Reason::Malformed(format!("key `{}` names no field", entry.key)),
            ));
        }
        let not_provided = || {
            (
                entry.line,
                Reason::FieldNotProvided {
                    field: field.to_owned(),
                    logsource,
                },
            )
        };
        let provider = logsource.provider().filter(|_| field == PROVIDER_FIELD);
        let index = match provider {
            Some(_) => None,
            None => Some(logsource.field_index(field).ok_or_else(not_provided)?),
        };
        let values: Vec<&Node> = match &entry.value.value {
            Value::Seq(items) if items.is_empty() => {
                return Err((
                    entry.line,
                    Reason::BadValue(format!("`{}` has an empty list of values", entry.key)),
                ));
            }
            Value::Seq(items) => items.iter().collect(),
            _ => vec![&entry.value],
        };
        let field_index = |name: &str| logsource.field_index(name);
        let matchers = modifiers::build_matchers(&values, &mods, &field_index, budget)?;
        // A provider test looks at field 0 of `holds_for_value`'s event.
        let test = FieldTest {
            target: Target::Field(index.unwrap_or(0)),
            matchers,
            all: mods.all,
        };
        match provider {
            None => tests.push(test),
            Some(provider) => can_hold &= holds_for_value(&test, logsource, provider),
        }
    }
    Ok(can_hold.then_some(tests))
}

/// Whether `test`, which looks at field 0, holds for an event whose field 0
/// is `value`.
fn holds_for_value(test: &FieldTest, logsource: Logsource, value: &str) -> bool {
    use crate::matcher::{EventView, LoweredFields};
    use crate::schema::EventFields;
    /// An event of `logsource` whose field 0 is `value` (and no other).
    struct One<'a>(Logsource, &'a str);
    impl EventFields for One<'_> {
        fn logsource(&self) -> Logsource {
            self.0
        }
        fn get(&self, index: usize) -> Option<&str> {
            (index == 0).then_some(self.1)
        }
    }
    let event = One(logsource, value);
    let mut lowered = LoweredFields::default();
    lowered.fill(&event, None);
    let view = EventView {
        event: &event,
        lowered: &lowered,
    };
    test.matches(&view)
}

/// What a rule needs, for the engine's prefilter: if the rule fires, at
/// least one returned `(field, matcher)` holds on the event. Each is a
/// caseless [`Matcher::Str`] with a non-empty literal (for a wildcard
/// pattern, its longest literal must occur) or a [`Matcher::Regex`] with
/// [`regex_literals`] (one of which must occur). `None` when no such
/// guarantee can be given.
pub fn required_matchers(rule: &CompiledRule) -> Option<Vec<(usize, &Matcher)>> {
    expr_literals(&rule.condition, &rule.selections)
}

/// Every necessary condition [`required_matchers`] can see, not only the
/// most selective one: if the rule fires, each returned set has at least
/// one `(field, matcher)` that holds (the conjuncts of its top-level AND,
/// down to the field tests of single-map selections).
pub fn required_conjuncts(rule: &CompiledRule) -> Vec<Vec<(usize, &Matcher)>> {
    let mut out = Vec::new();
    conjuncts(&rule.condition, &rule.selections, &mut out);
    // An empty set would claim the rule can never fire.
    out.retain(|c| !c.is_empty());
    out
}

fn conjuncts<'r>(expr: &Expr, selections: &'r [Selection], out: &mut Vec<Required<'r>>) {
    match expr {
        Expr::And(parts) => parts.iter().for_each(|p| conjuncts(p, selections, out)),
        Expr::Selection(i) => match selections.get(*i).map(|s| s.any_of.as_slice()) {
            Some([tests]) => out.extend(tests.iter().filter_map(test_literals)),
            _ => out.extend(expr_literals(expr, selections)),
        },
        _ => out.extend(expr_literals(expr, selections)),
    }
}

/// How selective requiring `m` is: the length of the shortest literal one
/// of which occurs whenever it holds (its text; a regex's shortest
/// [`regex_literals`]). `None` if there is no such literal.
fn literal_len(m: &Matcher) -> Option<usize> {
    match m {
        Matcher::Str {
            kind,
            text,
            cased: false,
        } if !text.is_empty() && *kind != StrKind::Any => Some(text.len()),
        Matcher::Regex(regex) => regex_literals(regex)?.iter().map(String::len).min(),
        _ => None,
    }
}

type Required<'r> = Vec<(usize, &'r Matcher)>;

fn expr_literals<'r>(expr: &Expr, selections: &'r [Selection]) -> Option<Required<'r>> {
    match expr {
        Expr::Selection(i) => {
            let selection = selections.get(*i)?;
            let mut all = Vec::new();
            for tests in &selection.any_of {
                all.extend(best(tests.iter().map(test_literals))?);
            }
            Some(all)
        }
        Expr::Not(_) => None,
        Expr::And(parts) => best(parts.iter().map(|p| expr_literals(p, selections))),
        Expr::Or(parts) => {
            let mut all = Vec::new();
            for part in parts {
                all.extend(expr_literals(part, selections)?);
            }
            Some(all)
        }
    }
}

/// Of several necessary alternatives (an AND), the one whose shortest
/// literal is longest: the most selective prefilter.
fn best<'r>(candidates: impl Iterator<Item = Option<Required<'r>>>) -> Option<Required<'r>> {
    let shortest = |c: &Required<'r>| {
        c.iter()
            .filter_map(|(_, m)| literal_len(m))
            .min()
            .unwrap_or(0)
    };
    candidates
        .flatten()
        .filter(|c| !c.is_empty())
        .max_by_key(|c| (shortest(c), std::cmp::Reverse(c.len())))
}

fn test_literals(test: &FieldTest) -> Option<Required<'_>> {
    let Target::Field(field) = test.target else {
        return None;
    };
    fn literal(m: &Matcher) -> Option<&Matcher> {
        literal_len(m).map(|_| m)
    }
    if test.all {
        // Every value must match, so any one of them is required.
        test.matchers
            .iter()
            .filter_map(literal)
            .max_by_key(|m| literal_len(m).unwrap_or(0))
            .map(|m| vec![(field, m)])
    } else {
        test.matchers
            .iter()
            .map(|m| literal(m).map(|m| (field, m)))
            .collect()
    }
}

/// The shortest gate literal worth scanning for: shorter ones occur in
/// most command lines and would cost automaton hits for little filtering.
const MIN_GATE_LEN: usize = 3;

/// For a regular expression: lowercased literals one of which occurs in
/// the lowercased value whenever the expression matches the value as
/// written. `None` when there is no such set worth having.
///
/// The literals are what every match starts (or ends) with, or what every
/// match of a run of the pattern's top-level parts starts with, extracted
/// from the pattern parsed case-insensitively, so that they cover every
/// casing the value can have, whatever the expression's own flags;
/// lowercasing a value maps each character on its own, so a matched
/// literal's lowercase form occurs in the lowercased value. The one
/// exception is the Greek sigma, lowercased by context: literals containing
/// it are not used.
pub fn regex_literals(regex: &regex::Regex) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    use regex_syntax::hir::{Hir, HirKind};
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(true)
        .build()
        .parse(regex.as_str())
        .ok()?;
    let literals = |(kind, hir): (ExtractKind, &Hir)| -> Option<Vec<String>> {
        let seq = Extractor::new().kind(kind).extract(hir);
        let texts: Vec<String> = seq
            .literals()?
            .iter()
            .map(|l| {
                std::str::from_utf8(l.as_bytes())
                    .ok()
                    .map(str::to_lowercase)
            })
            .collect::<Option<_>>()?;
        let usable = !texts.is_empty()
            && texts
                .iter()
                .all(|t| t.len() >= MIN_GATE_LEN && !t.contains(['Σ', 'σ', 'ς']));
        usable.then_some(texts)
    };
    // Every match of a concatenation contains a match of each run of its
    // parts up to the end, which starts with one of that run's prefix
    // literals: the rarest literal is often inside
    // (`\.exe\s+[^"]{0,64}werfaultsecure\.exe`). Runs start after a part
    // that is not a literal or a class (a repetition, a group...): starting
    // from every part was quadratic, and doubled the engine's build time.
    let mut top = &hir;
    while let HirKind::Capture(capture) = top.kind() {
        top = &capture.sub;
    }
    // At most MAX_TAILS runs are tried: each clones the rest of the
    // expression, so trying every one was quadratic in its length (a 24 KB
    // `ab*ab*...` took 3 GB).
    const MAX_TAILS: usize = 16;
    let tails: Vec<Hir> = match top.kind() {
        HirKind::Concat(parts) => {
            let literal = |p: &Hir| matches!(p.kind(), HirKind::Literal(_) | HirKind::Class(_));
            (1..parts.len())
                .filter(|&start| parts.get(start - 1).is_some_and(|p| !literal(p)))
                .take(MAX_TAILS)
                .filter_map(|start| parts.get(start..))
                .map(|tail| Hir::concat(tail.to_vec()))
                .collect()
        }
        _ => Vec::new(),
    };
    let whole = [ExtractKind::Prefix, ExtractKind::Suffix].map(|kind| (kind, &hir));
    let inner = tails.iter().map(|tail| (ExtractKind::Prefix, tail));
    let shortest = |texts: &Vec<String>| texts.iter().map(String::len).min();
    let mut best = whole
        .into_iter()
        .chain(inner)
        .filter_map(literals)
        .max_by_key(shortest)?;
    best.sort_unstable();
    best.dedup();
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::regex_literals;

    fn gates(pattern: &str) -> Option<Vec<String>> {
        regex_literals(&regex::Regex::new(pattern).expect("valid regex"))
    }

    /// Whatever the gates are, one of them occurs in the lowercased form of
    /// every value the expression matches: the prefilter's promise.
    fn assert_gated(pattern: &str, matching: &[&str]) {
        let regex = regex::Regex::new(pattern).expect("valid regex");
        let gates = gates(pattern).expect("gates");
        for value in matching {
            assert!(regex.is_match(value), "{pattern} must match {value:?}");
            let lower = value.to_lowercase();
            assert!(
                gates.iter().any(|g| lower.contains(g.as_str())),
                "{pattern}: none of {gates:?} in {value:?}"
            );
        }
    }

    #[test]
    fn a_gate_may_be_rarer_than_the_expression_s_prefix() {
        // Every match starts with `.exe`, but a longer literal from further
        // in (the tail `werfaultsecure.exe`, or its suffix) gates better.
        let pattern = r#"\.exe\s+[^"]{0,64}werfaultsecure\.exe"#;
        let gates = gates(pattern).expect("gates");
        assert!(
            gates.iter().all(|g| g.len() > ".exe".len()),
            "more selective than `.exe`: {gates:?}"
        );
        assert_gated(pattern, &["C:\\x.exe  -p werfaultsecure.exe"]);
    }

    #[test]
    fn gates_cover_every_casing_and_alternative() {
        assert_gated(
            r"(?i)\\(cmd|powershell)\.exe",
            &[
                "C:\\Windows\\System32\\CMD.EXE /c",
                "x\\PowerShell.exe -nop",
            ],
        );
        // A case-sensitive expression's gates still hold on lowercased values.
        assert_gated(
            r"Net\.WebClient\)\.Download",
            &["(New-Object Net.WebClient).DownloadString('u')"],
        );
    }

    #[test]
    fn no_gate_when_none_is_selective_or_safe() {
        assert_eq!(gates(r"a.*b"), None, "literals shorter than 3 bytes");
        assert_eq!(gates(r"[0-9a-f]{32}"), None, "no literal at all");
        assert!(gates(r"(?i)tύτημα").is_some(), "the same without sigma");
        assert_eq!(gates(r"(?i)σύστημα"), None, "the context-lowercased sigma");
    }
}
