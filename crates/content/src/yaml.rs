//! A YAML document as a small tree whose every node knows its source line,
//! built from `saphyr-parser` events with a nesting limit.
//!
//! We build our own tree rather than use a generic YAML value so that
//! rejections can name `file:line`, so that scalar typing follows YAML 1.2's
//! core schema the way Sigma authors expect (`'1'` is a string, `1` is a
//! number), and so that hostile input (deep nesting, aliases, huge files) is
//! refused with an error instead of exhausting the stack.

use saphyr_parser::{Event, Parser, ScalarStyle};

/// The deepest nesting a rule may use. Sigma rules need about 5 levels.
pub const MAX_DEPTH: usize = 64;
/// The largest rule file accepted (the largest SigmaHQ rule is ~30 KiB).
pub const MAX_BYTES: usize = 1 << 20;

/// A YAML node with the 1-based line where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub line: usize,
    pub value: Value,
}

/// YAML values after core-schema resolution of plain scalars.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string, with the text exactly as written (plain or quoted).
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order; keys are scalars rendered as text.
    Map(Vec<Entry>),
}

/// One `key: value` pair; `line` is where the key is written.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub line: usize,
    pub value: Node,
}

/// Why a document could not be read, with the 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

impl Node {
    /// The value of `key` if this node is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// The text of a scalar (strings as is, numbers and booleans rendered).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// A short name for the node's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "list",
            Value::Map(_) => "mapping",
        }
    }
}

enum Open {
    Seq(usize, Vec<Node>),
    /// A mapping under construction and the key waiting for its value.
    Map(usize, Vec<Entry>, Option<(String, usize)>),
}

/// Parses the first document of `text`. An empty document is `Null`.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    if text.len() > MAX_BYTES {
        return Err(YamlError {
            line: 1,
            message: format!(
                "file is {} bytes; rules larger than {MAX_BYTES} bytes are refused",
                text.len()
            ),
        });
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    // The first document's root, once complete. The rest of the stream is
    // still parsed: an error or a second document after it is not ignored.
    let mut root: Option<Node> = None;
    loop {
        let (event, span) = match parser.next_event() {
            None => break,
            Some(Ok(next)) => next,
            Some(Err(e)) => {
                return Err(YamlError {
                    line: e.marker().line().max(1),
                    message: format!("invalid YAML: {}", e.info()),
                });
            }
        };
        let line = span.start.line().max(1);
        let finished = match event {
            Event::DocumentStart(_) if root.is_some() => {
                return Err(YamlError {
                    line,
                    message: "a second YAML document: one rule per file (Sigma's multi-document rule collections, `action: global`, are not supported; split them into files)".into(),
                });
            }
            Event::Nothing | Event::StreamStart | Event::DocumentStart(_) | Event::DocumentEnd => {
                continue;
            }
            Event::StreamEnd => break,
            Event::Alias(_) => {
                return Err(YamlError {
                    line,
                    message: "YAML aliases are not supported in rules".into(),
                });
            }
            Event::Scalar(text, style, _, _) => Node {
                line,
                value: resolve(&text, style),
            },
            Event::SequenceStart(_, _) | Event::MappingStart(_, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(YamlError {
                        line,
                        message: format!("nesting deeper than {MAX_DEPTH} levels"),
                    });
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Open::Seq(line, Vec::new())
                } else {
                    Open::Map(line, Vec::new(), None)
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Open::Seq(line, items)) => Node {
                    line,
                    value: Value::Seq(items),
                },
                Some(Open::Map(line, entries, None)) => Node {
                    line,
                    value: Value::Map(entries),
                },
                Some(Open::Map(line, _, Some((key, _)))) => {
                    return Err(YamlError {
                        line,
                        message: format!("key `{key}` has no value"),
                    });
                }
                None => {
                    return Err(YamlError {
                        line,
                        message: "unbalanced YAML structure".into(),
                    });
                }
            },
        };
        match stack.last_mut() {
            None => {
                root = Some(finished);
                continue;
            }
            Some(Open::Seq(_, items)) => items.push(finished),
            Some(Open::Map(_, entries, pending)) => match pending.take() {
                Some((key, key_line)) => {
                    if entries.iter().any(|e| e.key == key) {
                        return Err(YamlError {
                            line: key_line,
                            message: format!("duplicate key `{key}`"),
                        });
                    }
                    entries.push(Entry {
                        key,
                        line: key_line,
                        value: finished,
                    });
                }
                None => match finished.scalar_text() {
                    Some(key) => *pending = Some((key, finished.line)),
                    None if finished.value == Value::Null => {
                        *pending = Some((String::new(), finished.line))
                    }
                    None => {
                        return Err(YamlError {
                            line: finished.line,
                            message: format!("a {} cannot be a mapping key", finished.kind()),
                        });
                    }
                },
            },
        }
    }
    Ok(root.unwrap_or(Node {
        line: 1,
        value: Value::Null,
    }))
}

/// YAML 1.2 core schema for plain scalars; quoted and block scalars are strings.
fn resolve(text: &str, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::Str(text.to_owned());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Int(i);
        }
    }
    let looks_float = digits.bytes().all(|b| {
        b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'E' || b == b'-' || b == b'+'
    }) && digits.bytes().any(|b| b.is_ascii_digit())
        && digits.starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if looks_float {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_types() {
        let doc = parse("a: 1\nb:\n  - 'x'\n  - true\nc: ~\nd: 1.5\n").expect("valid");
        assert_eq!(
            doc.get("a").map(|n| (&n.value, n.line)),
            Some((&Value::Int(1), 1))
        );
        let b = doc.get("b").expect("b");
        match &b.value {
            Value::Seq(items) => {
                assert_eq!(
                    items[0],
                    Node {
                        line: 3,
                        value: Value::Str("x".into())
                    }
                );
                assert_eq!(
                    items[1],
                    Node {
                        line: 4,
                        value: Value::Bool(true)
                    }
                );
            }
            other => panic!("not a list: {other:?}"),
        }
        assert_eq!(doc.get("c").map(|n| &n.value), Some(&Value::Null));
        assert_eq!(doc.get("d").map(|n| &n.value), Some(&Value::Float(1.5)));
    }

    #[test]
    fn hostile_input_is_an_error() {
        let deep = "[".repeat(10_000);
        assert!(parse(&deep).is_err());
        let dashes = "- ".repeat(10_000) + "x";
        assert!(parse(&dashes).is_err());
        assert!(parse("a: &x 1\nb: *x\n").is_err());
        assert_eq!(parse("a: 1\na: 2\n").map_err(|e| e.line), Err(2));
        assert!(parse("a: [1, 2\n").is_err());
    }

    #[test]
    fn what_follows_the_first_document_is_not_ignored() {
        let second = parse("title: a\n---\ntitle: b\n").unwrap_err();
        assert_eq!(second.line, 2);
        assert!(
            second.message.contains("second YAML document"),
            "{}",
            second.message
        );
        let invalid = parse("title: a\n---\n: : [\n").unwrap_err();
        assert!(invalid.line >= 2, "{invalid:?}");
        // One document, with or without its markers, is fine.
        assert!(parse("---\ntitle: a\n...\n").is_ok());
        assert!(parse("title: a\n").is_ok());
    }
}
