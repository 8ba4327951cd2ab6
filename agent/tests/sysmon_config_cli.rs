//! `config check`, `config test` and `replay --config` through the agent
//! binary: output formats, exit codes, and the public configurations.

mod support;

use std::path::PathBuf;

use support::{agent, lines, scenario};

fn shared_config(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/sysmon-config")
        .join(name)
        .to_str()
        .expect("UTF-8")
        .to_owned()
}

#[test]
fn config_check_accounts_for_the_public_configurations() {
    // DriverLoad is applied since issue #19 (before: SwiftOnSecurity
    // applied 233, ignored 536; sysmon-modular 1072 and 1268): its
    // elements count as applied, and its `Signature` filters too since the
    // agent's Authenticode check provides the field (before: 3 and 2
    // ignored as not provided). So are RegistryEvent (before: 234 and 535;
    // 1077 and 1263), every one of its 168 and 401 elements, with no field
    // ringside lacks; ProcessAccess, every one of whose filters names a
    // field event 10 provides; CreateRemoteThread, SwiftOnSecurity's 10
    // elements and sysmon-modular's 15; FileCreateStreamHash (before: 416
    // and 353; 1651 and 689), SwiftOnSecurity's 21 filters and
    // sysmon-modular's 24; and PipeEvent (17 and 18), SwiftOnSecurity's 10
    // elements and sysmon-modular's 127, every filter naming a field the two
    // events provide (PipeName, Image).
    for (name, expected) in [
        (
            "swiftonsecurity-sysmonconfig-export.xml",
            "applied 447, ignored 322 (event type not produced: 321, option with no meaning here: 1), rejected 0",
        ),
        (
            "sysmon-modular-sysmonconfig.xml",
            "applied 1802, ignored 538 (event type not produced: 535, option with no meaning here: 3), rejected 0",
        ),
    ] {
        let (code, stdout, stderr) = agent(&["config", "check", &shared_config(name)]);
        assert_eq!(code, 0, "{name}: {stderr}");
        let summary = stdout.lines().last().expect("a summary");
        assert_eq!(summary, expected, "{name}");
        assert!(!stdout.contains("<Signature> ignored"), "{name}: {stdout}");
        for produced in [
            "DriverLoad",
            "RegistryEvent",
            "FileCreateStreamHash",
            "PipeEvent",
        ] {
            assert!(
                !stdout.contains(&format!("ringside does not produce {produced}")),
                "{name}: {produced} is produced"
            );
        }
        // Every other line names file:line:column and why.
        for line in stdout.lines().filter(|l| *l != summary) {
            assert!(
                line.contains(&format!("{name}:")) && line.contains("> ignored: "),
                "{line}"
            );
        }
    }
}

#[test]
fn config_check_rejects_with_file_line_column_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.xml");
    std::fs::write(
        &path,
        "<Sysmon schemaversion=\"4.90\">\n<EventFiltering>\n<ProcessCreate onmatch=\"include\">\n<Image condition=\"matches\">x</Image>\n</ProcessCreate>\n</EventFiltering>\n</Sysmon>\n",
    )
    .expect("write");
    let shown = path.to_str().expect("UTF-8");
    let (code, stdout, _) = agent(&["config", "check", shown]);
    assert_eq!(code, 2);
    assert!(
        stdout.contains(&format!(
            "{shown}:4:1: <Image> rejected: condition \"matches\""
        )),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("rejected 1 (unknown condition: 1)\n"),
        "{stdout}"
    );
    // Not XML: a typed error naming the place, no panic, exit 2.
    std::fs::write(
        &path,
        "<Sysmon schemaversion=\"4.90\">\n<Oops>\n</Sysmon>\n",
    )
    .expect("write");
    let (code, _, stderr) = agent(&["config", "check", shown]);
    assert_eq!(code, 2);
    assert!(stderr.contains(&format!("{shown}:3:1: ")), "{stderr}");
    // replay refuses to start on it.
    let replay = dir.path().join("s.replay");
    std::fs::write(&replay, scenario()).expect("write");
    let (code, _, stderr) = agent(&[
        "replay",
        replay.to_str().expect("UTF-8"),
        "--no-enrich",
        "--config",
        shown,
    ]);
    assert_eq!(code, 2, "{stderr}");
}

const CONFIG: &str = r#"<Sysmon schemaversion="4.90"><EventFiltering>
<RuleGroup name="shells" groupRelation="or"><ProcessCreate onmatch="include">
<Image condition="image" name="technique_id=T1059.003,technique_name=Windows Command Shell">cmd.exe</Image>
</ProcessCreate></RuleGroup>
</EventFiltering></Sysmon>"#;

/// `replay --config` writes what the configuration logs, with RuleName;
/// `config test` over the unfiltered output agrees event by event.
#[test]
fn replay_with_config_and_config_test_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("c.xml");
    std::fs::write(&config, CONFIG).expect("write");
    let replay = dir.path().join("s.replay");
    std::fs::write(&replay, scenario()).expect("write");
    let replay = replay.to_str().expect("UTF-8");
    let config = config.to_str().expect("UTF-8");

    let (code, all, stderr) = agent(&["replay", replay, "--no-enrich"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, filtered, stderr) = agent(&["replay", replay, "--no-enrich", "--config", config]);
    assert_eq!(code, 0, "{stderr}");
    let filtered = lines(&filtered);
    let creates: Vec<&serde_json::Value> = filtered.iter().filter(|e| e["EventID"] == 1).collect();
    assert_eq!(creates.len(), 1, "only cmd.exe's creation");
    assert_eq!(
        creates[0]["EventData"]["RuleName"],
        "technique_id=T1059.003,technique_name=Windows Command Shell"
    );
    assert!(
        filtered
            .iter()
            .all(|e| e["EventID"] != 7 && e["EventID"] != 11)
    );

    let events = dir.path().join("all.jsonl");
    std::fs::write(&events, &all).expect("write");
    let (code, stdout, stderr) =
        agent(&["config", "test", config, events.to_str().expect("UTF-8")]);
    assert_eq!(code, 0, "{stderr}");
    let logged = stdout
        .lines()
        .filter(|l| l.contains(": logged ") && l.contains(" — by "))
        .count();
    let written = filtered
        .iter()
        .filter(|e| [1, 5, 7, 11, 23].contains(&e["EventID"].as_u64().unwrap_or(0)))
        .count();
    assert_eq!(logged, written, "{stdout}\n{filtered:?}");
    assert!(
        stdout.contains("logged  EventID 1 CommandLine=\"C:\\Windows\\system32\\cmd.exe\"")
            && stdout.contains("RuleName technique_id=T1059.003"),
        "{stdout}"
    );
    let summary = stdout.lines().last().expect("summary");
    assert!(
        summary.contains(&format!("logged {logged}, dropped ")),
        "{summary}"
    );
}
