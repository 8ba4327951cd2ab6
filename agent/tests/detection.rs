//! Content in the agent: `replay --rules` writes alerts beside the events,
//! a bundle naming a field the sensor does not provide is refused whole with
//! file:line, and `content check` reports per rule.

mod support;

use serde_json::json;
use support::{FIELD_NOT_PROVIDED, agent, lines, scenario, write_rule};

const CMD_RULE: &str = r#"title: cmd.exe echoing into a file
id: 5b0e3c55-0d1f-4d51-9d5b-1d2a3c4e5f60
status: test
level: medium
tags:
    - attack.execution
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\cmd.exe'
        CommandLine|contains: 'echo hi'
        ParentImage|endswith: '\explorer.exe'
    condition: selection
"#;

#[test]
fn replay_with_rules_writes_an_alert_for_the_matching_event_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    write_rule(&rules, "cmd.yml", CMD_RULE);
    let replay = dir.path().join("scenario.replay");
    std::fs::write(&replay, scenario()).unwrap();

    let (code, stdout, stderr) = agent(&[
        "replay",
        replay.to_str().unwrap(),
        "--no-enrich",
        "--rules",
        rules.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(
        stderr.contains("1 rules from 1 files active (0 rejected)"),
        "{stderr}"
    );
    let lines = lines(&stdout);
    let alerts: Vec<_> = lines.iter().filter(|l| l.get("Alert").is_some()).collect();
    assert_eq!(
        alerts.len(),
        1,
        "exactly the cmd.exe process creation matches: {stdout}"
    );
    let alert = alerts[0];
    assert_eq!(
        alert["Alert"]["RuleId"],
        json!("5b0e3c55-0d1f-4d51-9d5b-1d2a3c4e5f60")
    );
    assert_eq!(alert["Alert"]["Level"], json!("medium"));
    assert_eq!(alert["Alert"]["Tags"], json!(["attack.execution"]));
    assert_eq!(alert["EventID"], json!(1));
    assert_eq!(
        alert["EventData"]["Image"],
        json!(r"C:\Windows\System32\cmd.exe")
    );
    // The alert line follows the event it is about, and that event is still emitted.
    let position = lines.iter().position(|l| l.get("Alert").is_some()).unwrap();
    assert_eq!(lines[position - 1]["EventData"], alert["EventData"]);
    assert!(stderr.contains("1 alert(s)"), "{stderr}");
}

#[test]
fn a_bundle_with_a_field_the_sensor_lacks_is_refused_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    write_rule(&rules, "cmd.yml", CMD_RULE);
    write_rule(&rules, "cwd.yml", FIELD_NOT_PROVIDED);
    let replay = dir.path().join("scenario.replay");
    std::fs::write(&replay, scenario()).unwrap();

    let (code, stdout, stderr) = agent(&[
        "replay",
        replay.to_str().unwrap(),
        "--no-enrich",
        "--rules",
        rules.to_str().unwrap(),
    ]);
    assert_eq!(
        code, 2,
        "strict is the default: nothing runs on a bundle that did not compile"
    );
    assert!(
        stdout.is_empty(),
        "no event is processed on a rejected bundle: {stdout}"
    );
    assert!(
        stderr.contains("cwd.yml:10"),
        "names the file and line: {stderr}"
    );
    assert!(
        stderr.contains("TerminalSessionId"),
        "names the field: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Lenient: the good rule runs, the bad one is reported.
    let (code, stdout, stderr) = agent(&[
        "replay",
        replay.to_str().unwrap(),
        "--no-enrich",
        "--rules",
        rules.to_str().unwrap(),
        "--lenient-rules",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("cwd.yml:10"), "{stderr}");
    assert_eq!(
        lines(&stdout)
            .iter()
            .filter(|l| l.get("Alert").is_some())
            .count(),
        1
    );
}

#[test]
fn content_check_prints_one_line_per_rejection_and_a_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_rule(dir.path(), "cmd.yml", CMD_RULE);
    write_rule(dir.path(), "cwd.yml", FIELD_NOT_PROVIDED);
    let (code, stdout, stderr) = agent(&["content", "check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "a rejected rule makes check fail: {stderr}");
    let out: Vec<&str> = stdout.lines().collect();
    assert_eq!(out.len(), 2, "{stdout}");
    assert!(
        out[0].contains("cwd.yml:10: ") && out[0].contains("TerminalSessionId"),
        "{stdout}"
    );
    assert!(out[1].starts_with("accepted 1, rejected 1"), "{stdout}");

    std::fs::remove_file(dir.path().join("cwd.yml")).unwrap();
    let (code, stdout, _) = agent(&["content", "check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("accepted 1, rejected 0"), "{stdout}");
}

#[test]
fn content_test_with_no_case_to_run_fails() {
    let rules = tempfile::tempdir().expect("tempdir");
    write_rule(rules.path(), "cmd.yml", CMD_RULE);
    let samples = tempfile::tempdir().expect("tempdir");
    let (code, _, stderr) = agent(&[
        "content",
        "test",
        rules.path().to_str().unwrap(),
        samples.path().to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "nothing tested is not a pass");
    assert!(stderr.contains("no regression case ran"), "{stderr}");
}

#[test]
fn content_check_refuses_a_rule_over_budget_with_file_line_and_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bomb = CMD_RULE.replace(
        "Image|endswith: '\\cmd.exe'",
        &format!("CommandLine|re: '{}'", "ab*".repeat(8000)),
    );
    assert_ne!(bomb, CMD_RULE, "the rule was rewritten");
    write_rule(dir.path(), "bomb.yml", &bomb);
    let (code, stdout, _) = agent(&["content", "check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stdout.contains("bomb.yml:")
            && stdout.contains("over budget: value bytes: 24000 (limit 4096)"),
        "{stdout}"
    );
}
