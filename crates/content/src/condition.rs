//! Sigma conditions: `and`, `or`, `not`, parentheses, `1 of x*`,
//! `all of x*`, `1 of them`, `all of them`, parsed into an [`Expr`] over the
//! rule's selections. Aggregations (`| count() ...`) are refused.

use crate::matcher::Expr;

/// The deepest parenthesis / `not` nesting accepted.
const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug, PartialEq)]
enum Token {
    And,
    Or,
    Not,
    Of,
    Open,
    Close,
    /// `1` or `any`.
    One,
    All,
    Them,
    Ident(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' || c == ')' {
            chars.next();
            tokens.push(if c == '(' { Token::Open } else { Token::Close });
        } else if c == '|' {
            return Err("aggregations (`| count() ...`) are not supported".into());
        } else if c.is_alphanumeric() || c == '_' || c == '*' || c == '-' || c == '.' {
            let mut end = start;
            while let Some(&(i, c)) = chars.peek() {
                if c.is_alphanumeric() || c == '_' || c == '*' || c == '-' || c == '.' {
                    end = i + c.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let word = text.get(start..end).unwrap_or_default();
            tokens.push(match word.to_ascii_lowercase().as_str() {
                "and" => Token::And,
                "or" => Token::Or,
                "not" => Token::Not,
                "of" => Token::Of,
                "1" | "any" => Token::One,
                "all" => Token::All,
                "them" => Token::Them,
                _ => Token::Ident(word.to_owned()),
            });
        } else {
            return Err(format!("unexpected character `{c}`"));
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    names: &'a [String],
    depth: usize,
}

/// Parses `text` over the selection `names` (index = position in `names`).
pub fn parse(text: &str, names: &[String]) -> Result<Expr, String> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err("the condition is empty".into());
    }
    let mut parser = Parser { tokens, pos: 0, names, depth: 0 };
    let expr = parser.or()?;
    match parser.tokens.get(parser.pos) {
        None => Ok(expr),
        Some(token) => Err(format!("unexpected {} after a complete expression", describe(token))),
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::And => "`and`".into(),
        Token::Or => "`or`".into(),
        Token::Not => "`not`".into(),
        Token::Of => "`of`".into(),
        Token::Open => "`(`".into(),
        Token::Close => "`)`".into(),
        Token::One => "`1`".into(),
        Token::All => "`all`".into(),
        Token::Them => "`them`".into(),
        Token::Ident(name) => format!("`{name}`"),
    }
}

impl Parser<'_> {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::Or(parts) })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.unary()?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::And(parts) })
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let result = self.primary();
        self.depth -= 1;
        result
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Not) => Ok(Expr::Not(Box::new(self.unary()?))),
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    Some(token) => Err(format!("expected `)`, found {}", describe(&token))),
                    None => Err("missing `)`".into()),
                }
            }
            Some(quantifier @ (Token::One | Token::All)) => {
                if self.next() != Some(Token::Of) {
                    return Err(format!("{} must be followed by `of`", describe(&quantifier)));
                }
                let matched: Vec<Expr> = match self.next() {
                    Some(Token::Them) => self
                        .names
                        .iter()
                        .enumerate()
                        // pySigma: `them` leaves out identifiers starting with `_`.
                        .filter(|(_, n)| !n.starts_with('_'))
                        .map(|(i, _)| Expr::Selection(i))
                        .collect(),
                    Some(Token::Ident(pattern)) => {
                        let found: Vec<Expr> = self
                            .names
                            .iter()
                            .enumerate()
                            .filter(|(_, n)| name_matches(&pattern, n))
                            .map(|(i, _)| Expr::Selection(i))
                            .collect();
                        if found.is_empty() {
                            return Err(format!("`{pattern}` matches no selection"));
                        }
                        found
                    }
                    Some(token) => return Err(format!("expected a selection pattern or `them` after `of`, found {}", describe(&token))),
                    None => return Err("expected a selection pattern or `them` after `of`".into()),
                };
                if matched.is_empty() {
                    return Err("`them` matches no selection".into());
                }
                Ok(if quantifier == Token::All { Expr::And(matched) } else { Expr::Or(matched) })
            }
            Some(Token::Ident(name)) => {
                if name.contains('*') {
                    return Err(format!("`{name}`: wildcards are only allowed after `1 of` / `all of`"));
                }
                self.names
                    .iter()
                    .position(|n| *n == name)
                    .map(Expr::Selection)
                    .ok_or_else(|| format!("`{name}` is not a selection of this rule"))
            }
            Some(token) => Err(format!("unexpected {}", describe(&token))),
            None => Err("the condition ends too early".into()),
        }
    }
}

/// `selection_*`-style patterns: `*` matches any run of characters.
fn name_matches(pattern: &str, name: &str) -> bool {
    let tokens = crate::modifiers::parse_wildcards(pattern);
    crate::matcher::str_match(&crate::matcher::StrKind::Glob(tokens), "", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["selection_img", "selection_cli", "filter_main", "_hidden"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn grammar() {
        let n = names();
        assert_eq!(
            parse("all of selection_* and not 1 of filter_*", &n),
            Ok(Expr::And(vec![
                Expr::And(vec![Expr::Selection(0), Expr::Selection(1)]),
                Expr::Not(Box::new(Expr::Or(vec![Expr::Selection(2)]))),
            ]))
        );
        assert_eq!(
            parse("1 of them", &n),
            Ok(Expr::Or(vec![Expr::Selection(0), Expr::Selection(1), Expr::Selection(2)]))
        );
        assert_eq!(
            parse("selection_img or (selection_cli and filter_main)", &n),
            Ok(Expr::Or(vec![Expr::Selection(0), Expr::And(vec![Expr::Selection(1), Expr::Selection(2)])]))
        );
    }

    #[test]
    fn malformed() {
        let n = names();
        for bad in ["", "selection_img and", "(selection_img", "nope", "1 of x*", "selection | count() > 5", "a b", "selection_*", "all selection_img", ")"] {
            assert!(parse(bad, &n).is_err(), "{bad}");
        }
        assert!(parse(&"(".repeat(1000), &n).is_err());
        assert!(parse(&"not ".repeat(1000), &n).is_err());
    }
}
