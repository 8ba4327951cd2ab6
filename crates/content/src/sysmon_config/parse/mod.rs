//! The XML of a Sysmon configuration into [`RuleSet`]s, every element
//! accounted for in a [`LoadReport`].
//!
//! Structure read: `<Sysmon schemaversion=>`, its options
//! (`HashAlgorithms`, `CheckRevocation`, …), `<EventFiltering>`, then
//! `<RuleGroup name= groupRelation=>` (or, in old schemas, event elements
//! directly), event elements with `onmatch=`, and in them field elements
//! with `condition=` and `name=`, or `<Rule name= groupRelation=>` holding
//! field elements.

use std::path::Path;

use roxmltree::{Document, Node, ParsingOptions};

mod values;

use super::condition::Condition;
use super::events::SysmonType;
use super::report::{Element, LoadReport, Outcome};
use super::{
    ConfigError, Filter, HashAlgorithms, Item, Loaded, OnMatch, Relation, RuleBlock, RuleSet,
    SysmonConfig, eval,
};
pub use values::expand_env;
use values::{IGNORED_OPTIONS, LineIndex, is_schema_4, line_column, parse_hashes, parse_relation};

/// Largest configuration read: the public ones are 70 and 170 KiB.
pub const MAX_BYTES: usize = 16 << 20;
/// Most XML nodes parsed (bounds memory on hostile input).
const MAX_NODES: u32 = 1_000_000;

/// Looks up an environment variable for `%NAME%` expansion.
pub type Env<'a> = dyn Fn(&str) -> Option<String> + 'a;

const IGNORED_OPTION: &str = "option with no meaning here";
const NOT_PRODUCED: &str = "event type not produced";
const NOT_PROVIDED: &str = "field not provided";

/// Parses a configuration read from `path`.
pub fn parse_bytes(bytes: &[u8], path: &Path, env: &Env<'_>) -> Result<Loaded, ConfigError> {
    let xml_error = |line, column, message: String| ConfigError::Xml {
        path: path.to_owned(),
        line,
        column,
        message,
    };
    if bytes.len() > MAX_BYTES {
        return Err(xml_error(
            1,
            1,
            format!(
                "{} bytes is larger than a configuration may be ({MAX_BYTES})",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_column(bytes, e.valid_up_to());
        xml_error(line, column, format!("not UTF-8: {e}"))
    })?;
    // A UTF-8 byte order mark is not part of the XML (Windows editors write it).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    parse_str(text, path, env)
}

/// Parses configuration text.
pub fn parse_str(text: &str, path: &Path, env: &Env<'_>) -> Result<Loaded, ConfigError> {
    let options = ParsingOptions {
        // Sysmon configurations have no DTD; refusing one closes off entity
        // expansion attacks entirely.
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options).map_err(|e| {
        let pos = e.pos();
        ConfigError::Xml {
            path: path.to_owned(),
            line: pos.row,
            column: pos.col,
            message: e.to_string(),
        }
    })?;
    let mut parser = Parser {
        doc: &doc,
        lines: LineIndex::new(text),
        env,
        report: LoadReport {
            path: path.to_owned(),
            elements: Vec::new(),
        },
        sets: vec![Vec::new(); super::events::ALL_TYPES.len()],
        hash_algorithms: None,
        schema_version: String::new(),
    };
    parser.root(doc.root_element())?;
    if parser.report.is_rejected() {
        return Err(ConfigError::Rejected(parser.report));
    }
    let compiled = eval::Compiled::new(&parser.sets);
    Ok(Loaded {
        config: SysmonConfig {
            source: path.to_owned(),
            schema_version: parser.schema_version,
            hash_algorithms: parser.hash_algorithms,
            sets: parser.sets,
            compiled,
        },
        report: parser.report,
    })
}

struct Parser<'d, 'i, 'e> {
    doc: &'d Document<'i>,
    lines: LineIndex,
    env: &'e Env<'e>,
    report: LoadReport,
    sets: Vec<Vec<RuleSet>>,
    hash_algorithms: Option<HashAlgorithms>,
    schema_version: String,
}

fn ignored(kind: &'static str, why: impl Into<String>) -> Outcome {
    Outcome::Ignored {
        kind,
        why: why.into(),
    }
}

fn rejected(kind: &'static str, why: impl Into<String>) -> Outcome {
    Outcome::Rejected {
        kind,
        why: why.into(),
    }
}

impl Parser<'_, '_, '_> {
    fn pos(&self, node: Node<'_, '_>) -> (u32, u32) {
        self.lines
            .position(self.doc.input_text(), node.range().start)
    }

    fn account(&mut self, node: Node<'_, '_>, event_type: Option<&'static str>, outcome: Outcome) {
        let (line, column) = self.pos(node);
        self.report.push(Element {
            line,
            column,
            name: node.tag_name().name().to_owned(),
            event_type,
            outcome,
        });
    }

    /// Accounts for `node` and every element below it with one outcome
    /// (an ignored subtree is ignored in every element, for the same reason).
    fn account_subtree(
        &mut self,
        node: Node<'_, '_>,
        event_type: Option<&'static str>,
        outcome: &Outcome,
    ) {
        for element in node.descendants().filter(Node::is_element) {
            self.account(element, event_type, outcome.clone());
        }
    }

    /// Attributes other than `allowed` reject the element; returns the
    /// rejection reason if any.
    fn unknown_attribute(node: Node<'_, '_>, allowed: &[&str]) -> Option<String> {
        node.attributes()
            .find(|a| a.namespace().is_some() || !allowed.contains(&a.name()))
            .map(|a| {
                format!(
                    "unknown attribute `{}` (allowed: {})",
                    a.name(),
                    if allowed.is_empty() {
                        "none".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                )
            })
    }

    /// Non-whitespace text directly inside a container element.
    fn stray_text(&mut self, node: Node<'_, '_>, event_type: Option<&'static str>) {
        for child in node.children().filter(Node::is_text) {
            if child.text().is_some_and(|t| !t.trim().is_empty()) {
                let (line, column) = self.pos(child);
                self.report.push(Element {
                    line,
                    column,
                    name: "#text".into(),
                    event_type,
                    outcome: rejected(
                        "unexpected text",
                        format!(
                            "text inside <{}> where only elements belong",
                            node.tag_name().name()
                        ),
                    ),
                });
            }
        }
    }

    fn root(&mut self, root: Node<'_, '_>) -> Result<(), ConfigError> {
        if root.tag_name().name() != "Sysmon" {
            let (line, column) = self.pos(root);
            return Err(ConfigError::Xml {
                path: self.report.path.clone(),
                line,
                column,
                message: format!(
                    "the root element is <{}>: not a Sysmon configuration (expected <Sysmon schemaversion=\"4.x\">)",
                    root.tag_name().name()
                ),
            });
        }
        let version = root.attribute("schemaversion").unwrap_or("");
        self.schema_version = version.to_owned();
        let outcome = if let Some(why) = Self::unknown_attribute(root, &["schemaversion"]) {
            rejected("bad attribute", why)
        } else if version.is_empty() {
            rejected(
                "bad schema version",
                "schemaversion= is missing (ringside reads schema 4.x)",
            )
        } else if !is_schema_4(version) {
            rejected(
                "bad schema version",
                format!("schema {version}: ringside reads schema 4.x (4.00 to 4.90)"),
            )
        } else {
            Outcome::Applied
        };
        self.account(root, None, outcome);
        self.stray_text(root, None);
        for child in root.children().filter(Node::is_element) {
            self.option(child);
        }
        Ok(())
    }

    fn option(&mut self, node: Node<'_, '_>) {
        let name = node.tag_name().name();
        if name == "EventFiltering" {
            let outcome = match Self::unknown_attribute(node, &[]) {
                Some(why) => rejected("bad attribute", why),
                None => Outcome::Applied,
            };
            self.account(node, None, outcome);
            self.stray_text(node, None);
            for child in node.children().filter(Node::is_element) {
                self.filtering_child(child);
            }
            return;
        }
        if name == "HashAlgorithms" {
            let outcome = match parse_hashes(node.text().unwrap_or("")) {
                Ok(hashes) => {
                    self.hash_algorithms = Some(hashes);
                    Outcome::Applied
                }
                Err(why) => rejected("bad option value", why),
            };
            self.account(node, None, outcome);
            return;
        }
        let outcome = match IGNORED_OPTIONS.iter().find(|(n, _)| *n == name) {
            Some((_, why)) => ignored(IGNORED_OPTION, *why),
            None => rejected(
                "unknown element",
                format!("<{name}> is not a Sysmon option of schema 4.x"),
            ),
        };
        self.account_subtree(node, None, &outcome);
    }

    /// A child of `<EventFiltering>`: a RuleGroup, or an event element
    /// directly (schemas before RuleGroup; its filters are OR'ed).
    fn filtering_child(&mut self, node: Node<'_, '_>) {
        if node.tag_name().name() != "RuleGroup" {
            self.event_element(node, Relation::Or, None);
            return;
        }
        let (relation, outcome) = Self::grouping(node);
        self.account(node, None, outcome);
        self.stray_text(node, None);
        let name = node.attribute("name").filter(|n| !n.is_empty());
        for child in node.children().filter(Node::is_element) {
            self.event_element(child, relation, name);
        }
    }

    fn event_element(&mut self, node: Node<'_, '_>, relation: Relation, group: Option<&str>) {
        let name = node.tag_name().name();
        let Some(sysmon) = SysmonType::by_name(name) else {
            let why = if name == "RuleGroup" {
                "a RuleGroup inside a RuleGroup (RuleGroups hold event elements)".to_owned()
            } else {
                format!("<{name}> is not a Sysmon event type of schema 4.x")
            };
            self.account_subtree(node, None, &rejected("unknown element", why));
            return;
        };
        let onmatch = match node.attribute("onmatch") {
            Some(v) if v.eq_ignore_ascii_case("include") => Ok(OnMatch::Include),
            Some(v) if v.eq_ignore_ascii_case("exclude") => Ok(OnMatch::Exclude),
            Some(v) => Err(format!("onmatch=\"{v}\": expected include or exclude")),
            None => Err("onmatch= is missing: expected include or exclude".to_owned()),
        };
        let Some(target) = sysmon.target else {
            // Checked no further: ringside would not apply it either way.
            let why = format!(
                "ringside does not produce {} (Sysmon event {}) events yet",
                sysmon.name, sysmon.id
            );
            self.account_subtree(node, Some(sysmon.name), &ignored(NOT_PRODUCED, why));
            return;
        };
        let outcome = match (Self::unknown_attribute(node, &["onmatch"]), &onmatch) {
            (Some(why), _) => rejected("bad attribute", why),
            (None, Err(why)) => rejected("bad attribute", why.clone()),
            (None, Ok(_)) => Outcome::Applied,
        };
        self.account(node, Some(sysmon.name), outcome);
        self.stray_text(node, Some(sysmon.name));
        let mut items = Vec::new();
        for child in node.children().filter(Node::is_element) {
            if child.tag_name().name() == "Rule" {
                if let Some(rule) = self.rule(child, sysmon, target) {
                    items.push(Item::Rule(rule));
                }
            } else if let Some(filter) = self.filter(child, sysmon, target) {
                items.push(Item::Filter(filter));
            }
        }
        if let Ok(onmatch) = onmatch {
            let (line, _) = self.pos(node);
            if let Some(sets) = self.sets.get_mut(sysmon.slot()) {
                sets.push(RuleSet {
                    onmatch,
                    relation,
                    group_name: group.map(str::to_owned),
                    items,
                    line,
                });
            }
        }
    }

    /// A `<RuleGroup>`'s or `<Rule>`'s attributes (`name`, `groupRelation`):
    /// its relation — Sysmon's default, "or", when absent or bad — and
    /// whether the element is applied or rejected for them.
    fn grouping(node: Node<'_, '_>) -> (Relation, Outcome) {
        let relation = node.attribute("groupRelation").map(parse_relation);
        let outcome = match (
            Self::unknown_attribute(node, &["name", "groupRelation"]),
            &relation,
        ) {
            (Some(why), _) => rejected("bad attribute", why),
            (None, Some(Err(why))) => rejected("bad attribute", why.clone()),
            _ => Outcome::Applied,
        };
        (
            relation.and_then(Result::ok).unwrap_or(Relation::Or),
            outcome,
        )
    }

    fn rule(
        &mut self,
        node: Node<'_, '_>,
        sysmon: &'static SysmonType,
        target: super::Target,
    ) -> Option<RuleBlock> {
        let (relation, outcome) = Self::grouping(node);
        self.account(node, Some(sysmon.name), outcome);
        self.stray_text(node, Some(sysmon.name));
        let mut filters = Vec::new();
        for child in node.children().filter(Node::is_element) {
            if child.tag_name().name() == "Rule" {
                let outcome = rejected(
                    "unknown element",
                    "a <Rule> inside a <Rule> (Sysmon nests one level)",
                );
                self.account_subtree(child, Some(sysmon.name), &outcome);
            } else if let Some(filter) = self.filter(child, sysmon, target) {
                filters.push(filter);
            }
        }
        let (line, _) = self.pos(node);
        Some(RuleBlock {
            name: node
                .attribute("name")
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            relation,
            filters,
            line,
        })
    }

    fn filter(
        &mut self,
        node: Node<'_, '_>,
        sysmon: &'static SysmonType,
        target: super::Target,
    ) -> Option<Filter> {
        let field = node.tag_name().name();
        let condition_text = node.attribute("condition").unwrap_or("is");
        let condition = Condition::parse(condition_text);
        let nested = node.children().any(|c| c.is_element());
        let provided = target
            .fields()
            .iter()
            .position(|f| f.name == field && f.name != "RuleName");
        let outcome = if let Some(why) = Self::unknown_attribute(node, &["condition", "name"]) {
            rejected("bad attribute", why)
        } else if nested {
            rejected(
                "unknown element",
                format!("<{field}> holds elements; a filter holds its value as text"),
            )
        } else if !sysmon.fields.contains(&field) {
            rejected(
                "unknown field",
                format!(
                    "{} has no field {field} (its fields: {})",
                    sysmon.name,
                    sysmon.fields.join(", ")
                ),
            )
        } else if condition.is_none() {
            let known: Vec<&str> = Condition::ALL.iter().map(|(n, _)| *n).collect();
            rejected(
                "unknown condition",
                format!(
                    "condition \"{condition_text}\" is not one of: {}",
                    known.join(", ")
                ),
            )
        } else if provided.is_none() {
            ignored(
                NOT_PROVIDED,
                format!(
                    "{field} is a field of Sysmon's {} that ringside does not provide; this filter never matches",
                    sysmon.name
                ),
            )
        } else {
            Outcome::Applied
        };
        let keep = !matches!(outcome, Outcome::Rejected { .. });
        if nested {
            self.account_subtree(node, Some(sysmon.name), &outcome);
        } else {
            self.account(node, Some(sysmon.name), outcome);
        }
        let condition = condition.filter(|_| keep)?;
        let value = expand_env(node.text().unwrap_or(""), self.env);
        let (line, _) = self.pos(node);
        Some(Filter {
            field: provided,
            field_name: field.to_owned(),
            condition,
            patterns: condition.patterns(&value),
            name: node
                .attribute("name")
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            line,
        })
    }
}
