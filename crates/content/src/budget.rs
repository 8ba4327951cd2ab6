//! Compile budgets: what one rule and one bundle may cost, checked while
//! compiling, before the memory is spent. `content check` and bundle
//! loading compile through the same functions (`compile_rule` with a
//! [`RuleBudget`], `compile_sources` with a [`BundleBudget`]), so a rule
//! `check` accepts is never refused at load, and one over budget is refused
//! by both with the budget it exceeds.
//!
//! The limits leave SigmaHQ's Windows rules far inside them (measured on
//! `../shared/data/sigma`, 2,407 rules: the longest value is 178 bytes, the
//! longest regular expression 130, the most values in one rule 4,432, all
//! value bytes together 693 KB). What they bound is the engine's build:
//! automata are linear in the literal bytes they hold, and a value no
//! longer than [`VALUE_BYTES`] keeps a repetitive literal's quadratic
//! failure-link construction small.

use std::cell::Cell;

use crate::compile::Reason;

/// Bytes of one value as written (a string, wildcard pattern or regular
/// expression), before any expansion.
pub const VALUE_BYTES: usize = 4096;
/// Matchers one rule may compile to, after windash and encoding expansion.
pub const RULE_MATCHERS: usize = 20_000;
/// Literal bytes those matchers may hold together.
pub const RULE_LITERAL_BYTES: usize = 1 << 20;
/// Matchers a whole bundle may hold.
pub const BUNDLE_MATCHERS: usize = 200_000;
/// Literal bytes a whole bundle may hold.
pub const BUNDLE_LITERAL_BYTES: usize = 8 << 20;

/// What a compiled rule costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub matchers: usize,
    pub literal_bytes: usize,
}

/// The running cost of one rule while it compiles.
#[derive(Debug, Default)]
pub struct RuleBudget {
    spent: Cell<Cost>,
}

impl RuleBudget {
    /// A value about to be compiled: refused if it is too long.
    pub fn value(&self, text: &str) -> Result<(), Reason> {
        over("value bytes", VALUE_BYTES, text.len())
    }

    /// `matchers` more matchers holding `literal_bytes` bytes.
    pub fn spend(&self, matchers: usize, literal_bytes: usize) -> Result<(), Reason> {
        let spent = self.spent.get();
        let now = Cost {
            matchers: spent.matchers.saturating_add(matchers),
            literal_bytes: spent.literal_bytes.saturating_add(literal_bytes),
        };
        over("matchers per rule", RULE_MATCHERS, now.matchers)?;
        over(
            "literal bytes per rule",
            RULE_LITERAL_BYTES,
            now.literal_bytes,
        )?;
        self.spent.set(now);
        Ok(())
    }

    pub fn cost(&self) -> Cost {
        self.spent.get()
    }
}

/// The running cost of a bundle as its rules are accepted.
#[derive(Debug, Default)]
pub struct BundleBudget {
    spent: Cost,
}

impl BundleBudget {
    /// Takes a rule's cost, or refuses the rule that would exceed it.
    pub fn admit(&mut self, rule: Cost) -> Result<(), Reason> {
        let now = Cost {
            matchers: self.spent.matchers.saturating_add(rule.matchers),
            literal_bytes: self.spent.literal_bytes.saturating_add(rule.literal_bytes),
        };
        over("matchers per bundle", BUNDLE_MATCHERS, now.matchers)?;
        over(
            "literal bytes per bundle",
            BUNDLE_LITERAL_BYTES,
            now.literal_bytes,
        )?;
        self.spent = now;
        Ok(())
    }

    pub fn spent(&self) -> Cost {
        self.spent
    }
}

fn over(budget: &'static str, limit: usize, needed: usize) -> Result<(), Reason> {
    if needed > limit {
        Err(Reason::OverBudget {
            budget,
            limit,
            needed,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_is_refused_at_the_first_matcher_over_its_budget() {
        let budget = RuleBudget::default();
        assert!(budget.value(&"a".repeat(VALUE_BYTES)).is_ok());
        let long = budget.value(&"a".repeat(VALUE_BYTES + 1)).unwrap_err();
        assert_eq!(
            long.to_string(),
            "over budget: value bytes: 4097 (limit 4096)"
        );
        assert!(budget.spend(RULE_MATCHERS, 10).is_ok());
        let over = budget.spend(1, 1).unwrap_err();
        assert!(matches!(
            over,
            Reason::OverBudget {
                budget: "matchers per rule",
                ..
            }
        ));
        assert_eq!(
            budget.cost().matchers,
            RULE_MATCHERS,
            "a refused spend is not kept"
        );
    }

    #[test]
    fn a_bundle_refuses_the_rule_that_crosses_its_budget() {
        let mut bundle = BundleBudget::default();
        let rule = Cost {
            matchers: 1,
            literal_bytes: BUNDLE_LITERAL_BYTES / 2,
        };
        assert!(bundle.admit(rule).is_ok());
        assert!(bundle.admit(rule).is_ok());
        assert!(matches!(
            bundle.admit(rule),
            Err(Reason::OverBudget {
                budget: "literal bytes per bundle",
                ..
            })
        ));
        assert_eq!(bundle.spent().matchers, 2);
    }
}
