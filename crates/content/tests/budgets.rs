//! Content that would cost the engine too much is refused while compiling,
//! by `content check` and at load alike, naming the budget it exceeds.
//! Before the budgets, the first two rules here passed `check` and then
//! aborted the agent at load (3 GB, out of memory).

use std::path::Path;

use ringside_content::budget::{
    BUNDLE_LITERAL_BYTES, RULE_LITERAL_BYTES, RULE_MATCHERS, VALUE_BYTES,
};
use ringside_content::bundle::{Bundle, BundleError};
use ringside_content::check::check;
use ringside_content::compile::Reason;

fn rule(title: &str, detection: &str) -> String {
    format!(
        "title: {title}\nid: {title}\nstatus: test\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n{detection}\n  condition: selection\nlevel: high\n"
    )
}

/// `check` and a strict load of `dir` both refuse `file`, for `budget`.
fn refused_by_both(dir: &Path, file: &str, budget: &str) {
    let report = check(dir).expect("check runs");
    let rejection = report
        .rejections
        .iter()
        .find(|r| r.path.ends_with(file))
        .unwrap_or_else(|| panic!("check accepted {file}: {}", report.summary()));
    assert!(
        matches!(&rejection.reason, Reason::OverBudget { budget: b, .. } if *b == budget),
        "{rejection}"
    );
    let line = rejection.to_string();
    assert!(
        line.contains(file) && line.contains("over budget"),
        "{line}"
    );
    match Bundle::load(dir) {
        Err(BundleError::Rejected { rejections, .. }) => assert!(
            rejections
                .iter()
                .any(|r| r.path.ends_with(file) && r.reason == rejection.reason),
            "load refused it for another reason: {rejections:?}"
        ),
        Err(other) => panic!("load failed otherwise: {other}"),
        Ok(_) => panic!("load accepted what check refused"),
    }
}

#[test]
fn a_24_kb_regular_expression_is_refused_by_check_and_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pattern = "ab*".repeat(8000);
    let text = rule(
        "regex-bomb",
        &format!("  selection:\n    CommandLine|re: '{pattern}'"),
    );
    std::fs::write(dir.path().join("bomb.yml"), text).expect("write");
    refused_by_both(dir.path(), "bomb.yml", "value bytes");
}

#[test]
fn thirty_thousand_windash_values_are_refused_by_check_and_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut detection = String::from("  selection:\n    CommandLine|windash|contains:\n");
    for i in 0..30_000 {
        detection.push_str(&format!("      - ' -a{i} /b -c /d'\n"));
    }
    std::fs::write(
        dir.path().join("windash.yml"),
        rule("windash-bomb", &detection),
    )
    .expect("write");
    refused_by_both(dir.path(), "windash.yml", "matchers per rule");
}

#[test]
fn a_64_kib_repetitive_literal_is_refused_and_one_at_the_limit_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = "A".repeat(64 * 1024);
    std::fs::write(
        dir.path().join("long.yml"),
        rule(
            "long",
            &format!("  selection:\n    CommandLine|contains: '{long}'"),
        ),
    )
    .expect("write");
    refused_by_both(dir.path(), "long.yml", "value bytes");

    let dir = tempfile::tempdir().expect("tempdir");
    let at_limit = "A".repeat(VALUE_BYTES);
    std::fs::write(
        dir.path().join("limit.yml"),
        rule(
            "limit",
            &format!("  selection:\n    CommandLine|contains: '{at_limit}'"),
        ),
    )
    .expect("write");
    let report = check(dir.path()).expect("check");
    assert_eq!(report.accepted.len(), 1, "{report}");
    assert!(Bundle::load(dir.path()).is_ok());
}

#[test]
fn literal_bytes_per_rule_are_bounded() {
    // 60 values of 4 KiB with one windash position each: 300 matchers
    // (far under the count budget), 1.2 MiB of literals together.
    let dir = tempfile::tempdir().expect("tempdir");
    let values = RULE_LITERAL_BYTES / (5 * VALUE_BYTES) + 10;
    assert!(values * 5 < RULE_MATCHERS);
    let mut detection = String::from(
        "  selection:
    CommandLine|windash|contains:
",
    );
    for i in 0..values {
        detection.push_str(&format!(
            "      - ' -{i:06}{}'\n",
            "x".repeat(VALUE_BYTES - 8)
        ));
    }
    std::fs::write(dir.path().join("wide.yml"), rule("wide", &detection)).expect("write");
    refused_by_both(dir.path(), "wide.yml", "literal bytes per rule");
}

#[test]
fn the_rule_that_crosses_the_bundle_budget_is_refused_and_check_agrees_with_load() {
    // Rules of ~0.9 MiB of literals each (within the rule budget): the
    // bundle's budget admits 8 of them.
    let dir = tempfile::tempdir().expect("tempdir");
    let per_rule = 230;
    let rules = BUNDLE_LITERAL_BYTES / (per_rule * VALUE_BYTES) + 2;
    for r in 0..rules {
        let mut detection = String::from("  selection:\n    CommandLine|contains:\n");
        for i in 0..per_rule {
            detection.push_str(&format!(
                "      - '{r:03}{i:04}{}'\n",
                "y".repeat(VALUE_BYTES - 7)
            ));
        }
        std::fs::write(
            dir.path().join(format!("r{r:03}.yml")),
            rule(&format!("r{r}"), &detection),
        )
        .expect("write");
    }
    let report = check(dir.path()).expect("check");
    assert_eq!(
        report.accepted.len(),
        BUNDLE_LITERAL_BYTES / (per_rule * VALUE_BYTES)
    );
    assert!(!report.rejections.is_empty(), "{}", report.summary());
    assert!(report.rejections.iter().all(|r| matches!(
        r.reason,
        Reason::OverBudget {
            budget: "literal bytes per bundle",
            ..
        }
    )));
    // A strict load refuses the same rules, for the same reason (and
    // builds nothing).
    match Bundle::load(dir.path()) {
        Err(BundleError::Rejected {
            accepted,
            rejections,
        }) => {
            assert_eq!(rejections, report.rejections);
            assert_eq!(accepted, report.accepted.len());
        }
        other => panic!("strict load: {:?}", other.map(|r| r.files)),
    }
}
