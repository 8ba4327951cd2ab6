//! SigmaHQ's Windows rules and regression samples (shared data, not copied):
//! every rule accepted or rejected with a true reason, and detection on the
//! real Sysmon samples.

use ringside_content::compile::Reason;
use ringside_content::regression::Outcome;
use ringside_content::schema::Logsource;
use ringside_content::{check, regression};
use std::path::PathBuf;

fn sigma() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sigma")
}

#[test]
fn every_rule_is_accepted_or_rejected_with_a_true_reason() {
    let mut schema_fit = (0usize, 0usize);
    for dir in ["process_creation", "image_load", "file"] {
        let report = check(&sigma().join("rules/windows").join(dir)).expect("rules directory readable");
        println!("{dir}: {}", report.summary());
        assert!(!report.accepted.is_empty(), "{dir}: no rule accepted");
        // Check every rejection's reason against the rule text and schema.
        for rejection in &report.rejections {
            let text = std::fs::read_to_string(&rejection.path).expect("rule readable");
            let line = text.lines().nth(rejection.line.saturating_sub(1)).unwrap_or_default();
            match &rejection.reason {
                Reason::FieldNotProvided { field, logsource } => {
                    assert_eq!(logsource.field_index(field), None, "{rejection}");
                    let key = line.trim_start().trim_start_matches("- ");
                    assert!(
                        key.starts_with(&format!("{field}|")) || key.starts_with(&format!("{field}:")) || key.starts_with(&format!("'{field}")),
                        "{rejection}: line {} is `{line}`",
                        rejection.line
                    );
                }
                Reason::UnsupportedLogsource(_) => {
                    let category_ok = ["process_creation", "image_load", "file_event", "file_delete", "file_rename"]
                        .iter()
                        .any(|c| text.contains(&format!("category: {c}\n")));
                    assert!(!category_ok || text.contains("service:"), "{rejection}");
                }
                Reason::UnknownModifier(m) | Reason::UnsupportedModifier { modifier: m, .. } => {
                    assert!(line.contains(&format!("|{}", m.split('|').next().unwrap_or(m))), "{rejection}: `{line}`");
                }
                Reason::BadRegex { pattern, .. } => {
                    assert!(regex::Regex::new(pattern).is_err(), "{rejection}");
                }
                other => panic!("unexpected rejection class {}: {rejection}", other.class()),
            }
        }
        let field_rejections = report
            .rejections
            .iter()
            .filter(|r| matches!(r.reason, Reason::FieldNotProvided { .. } | Reason::UnsupportedLogsource(_)))
            .count();
        schema_fit.0 += report.accepted.len();
        schema_fit.1 += report.accepted.len() + report.rejections.len() - field_rejections;
    }
    let (accepted, fit) = schema_fit;
    println!("rules whose fields and logsource ringside provides: {fit}, accepted {accepted}");
    assert!(accepted * 100 >= fit * 95, "only {accepted} of {fit} schema-fitting rules accepted");
}

/// Regression folders whose rule does not fire, each with its reason.
const KNOWN_EXCEPTIONS: &[(&str, &str)] = &[];

#[test]
fn regression_samples_fire_their_rules() {
    let report = regression(&sigma().join("rules/windows"), &sigma().join("regression_data/rules/windows"))
        .expect("data readable");
    print!("{report}");
    assert!(report.cases.len() >= 100, "{}", report.summary());
    for case in &report.cases {
        let name = case.folder.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let excused = KNOWN_EXCEPTIONS.iter().any(|(folder, _)| *folder == name);
        match &case.outcome {
            Outcome::Fired { .. } => assert!(!excused, "{name} fires now: drop it from KNOWN_EXCEPTIONS"),
            Outcome::RuleRejected(rejection) => {
                // The only acceptable reason: the rule needs a field ringside does not provide.
                assert!(matches!(rejection.reason, Reason::FieldNotProvided { .. }), "{name}: {rejection}");
            }
            other => assert!(excused, "{name} ({:?}): {other:?}", case.logsource),
        }
    }
    assert!(report.cases.iter().any(|c| c.logsource == Logsource::ImageLoad));
}
