//! Loading the public configurations, the evaluation order, RuleName and
//! the accounting of every element.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::condition::fold;
use super::*;

/// An event given by field names.
struct Event {
    target: Target,
    values: Vec<Option<String>>,
}

impl Event {
    fn new(target: Target, fields: &[(&str, &str)]) -> Event {
        let mut values = vec![None; target.fields().len()];
        for (name, value) in fields {
            let i = target
                .fields()
                .iter()
                .position(|f| f.name == *name)
                .unwrap_or_else(|| panic!("{target:?} has no {name}"));
            values[i] = Some((*value).to_owned());
        }
        Event { target, values }
    }
}

impl FilterEvent for Event {
    fn target(&self) -> Option<Target> {
        Some(self.target)
    }
    fn field(&self, index: usize) -> Option<&str> {
        self.values.get(index)?.as_deref()
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn config(filtering: &str) -> SysmonConfig {
    let xml = format!(
        r#"<Sysmon schemaversion="4.90"><EventFiltering>{filtering}</EventFiltering></Sysmon>"#
    );
    match parse::parse_str(&xml, Path::new("test.xml"), &no_env) {
        Ok(loaded) => loaded.config,
        Err(e) => panic!("config does not load: {e}"),
    }
}

fn rejection(xml: &str) -> String {
    match parse::parse_str(xml, Path::new("bad.xml"), &no_env) {
        Ok(_) => panic!("accepted: {xml}"),
        Err(e) => e.to_string(),
    }
}

fn pc(image: &str, command_line: &str) -> Event {
    Event::new(
        Target::ProcessCreate,
        &[("Image", image), ("CommandLine", command_line)],
    )
}

/// (logged, RuleName) of `event`.
fn decide(config: &SysmonConfig, event: &Event) -> (bool, Option<String>) {
    let mut scratch = Scratch::default();
    let decision = config.decide(event, &mut scratch).expect("filtered");
    (decision.logged, decision.rule_name().map(str::to_owned))
}

fn logged(config: &SysmonConfig, event: &Event) -> bool {
    decide(config, event).0
}

fn shared_config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/sysmon-config")
        .join(name)
}

/// Both public configurations load, every element accounted for; nothing
/// in them is rejected. The counts are the note's (NOTES-issue17.md).
#[test]
fn the_public_configurations_load_with_every_element_accounted_for() {
    for (name, elements) in [
        ("swiftonsecurity-sysmonconfig-export.xml", 729),
        ("sysmon-modular-sysmonconfig.xml", 2000),
    ] {
        let path = shared_config(name);
        let text = std::fs::read_to_string(&path).expect("shared data is there");
        let loaded = load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let report = &loaded.report;
        // Every element of the document has exactly one entry.
        let doc = roxmltree::Document::parse(&text).expect("well-formed");
        let in_doc = doc.descendants().filter(|n| n.is_element()).count();
        assert_eq!(report.elements.len(), in_doc, "{name}");
        assert!(in_doc > elements, "{name}: {in_doc} elements");
        assert!(!report.is_rejected(), "{name}");
        // Positions agree with roxmltree's own.
        for (element, node) in report
            .elements
            .iter()
            .zip(doc.descendants().filter(|n| n.is_element()))
        {
            let pos = doc.text_pos_at(node.range().start);
            assert_eq!((element.line, element.column), (pos.row, pos.col), "{name}");
        }
        let counts = report.counts();
        assert!(counts.applied > 0 && counts.ignored_total() > 0, "{name}");
        assert!(loaded.config.filter_count() > 100, "{name}");
        assert!(loaded.config.hash_algorithms.is_some(), "{name}");
        for (sets, compiled) in eval::filter_counts(&loaded.config) {
            assert_eq!(sets, compiled, "{name}: compiled filters line up");
        }
    }
}

#[test]
fn rejections_name_file_line_column_and_reason() {
    let bad = "<Sysmon schemaversion=\"4.90\">\n<EventFiltering>\n<RuleGroup groupRelation=\"or\">\n<ProcessCreate onmatch=\"include\">\n  <Image condition=\"starts with\">x</Image>\n  <Imagee>y</Imagee>\n  <Image condition=\"is\">ok</Image>\n</ProcessCreate></RuleGroup></EventFiltering></Sysmon>";
    let message = rejection(bad);
    assert!(
        message.contains("bad.xml:5:3: <Image> rejected: condition \"starts with\" is not one of"),
        "{message}"
    );
    assert!(
        message.contains("bad.xml:6:3: <Imagee> rejected: ProcessCreate has no field Imagee"),
        "{message}"
    );
    assert!(message.contains("2 element(s) rejected"), "{message}");
    // Not well-formed: line and column of the XML error.
    let message = rejection("<Sysmon schemaversion=\"4.90\">\n  <EventFiltering>\n</Sysmon>");
    assert!(message.starts_with("bad.xml:3:"), "{message}");
    assert!(rejection("<Config/>").contains("not a Sysmon configuration"));
    assert!(rejection(r#"<Sysmon schemaversion="3.4"/>"#).contains("schema 3.4"));
    assert!(rejection(r#"<Sysmon schemaversion="4.90"><Bogus/></Sysmon>"#).contains("<Bogus>"));
    assert!(
        rejection(
            r#"<Sysmon schemaversion="4.90"><HashAlgorithms>crc32</HashAlgorithms></Sysmon>"#
        )
        .contains("crc32")
    );
    assert!(
        rejection(r#"<Sysmon schemaversion="4.90"><EventFiltering><ImageLoad onmatch="maybe"/></EventFiltering></Sysmon>"#)
            .contains("onmatch=\"maybe\"")
    );
    // A DTD (entity expansion) is refused.
    assert!(
        rejection("<!DOCTYPE x [<!ENTITY a \"b\">]><Sysmon schemaversion=\"4.90\"/>")
            .starts_with("bad.xml:1:")
    );
}

#[test]
fn ignored_elements_say_why() {
    let xml = r#"<Sysmon schemaversion="4.50">
  <CheckRevocation/>
  <EventFiltering>
    <NetworkConnect onmatch="include"><DestinationPort>443</DestinationPort></NetworkConnect>
    <ProcessCreate onmatch="include"><TerminalSessionId>1</TerminalSessionId></ProcessCreate>
  </EventFiltering>
</Sysmon>"#;
    let loaded = parse::parse_str(xml, Path::new("c.xml"), &no_env).expect("loads");
    let text = loaded.report.to_string();
    assert!(
        text.contains("c.xml:2:3: <CheckRevocation> ignored: checks driver"),
        "{text}"
    );
    assert!(text.contains("c.xml:4:5: <NetworkConnect> ignored: ringside does not produce NetworkConnect (Sysmon event 3)"), "{text}");
    assert!(text.contains("<DestinationPort> ignored"), "{text}");
    assert!(text.contains("c.xml:5:38: <TerminalSessionId> ignored: TerminalSessionId is a field of Sysmon's ProcessCreate that ringside does not provide"), "{text}");
    assert!(text.ends_with("applied 3, ignored 4 (event type not produced: 2, field not provided: 1, option with no meaning here: 1), rejected 0\n"), "{text}");
    // The ignored filter never matches: this include set logs nothing.
    assert!(!logged(&loaded.config, &pc("a.exe", "")));
    assert!(!loaded.config.can_log(Target::ProcessCreate));
}

#[test]
fn exclude_is_tested_first_and_include_logs() {
    let c = config(
        r#"<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">
             <Image condition="end with" name="shells">cmd.exe</Image></ProcessCreate></RuleGroup>
           <RuleGroup groupRelation="or"><ProcessCreate onmatch="exclude">
             <CommandLine condition="contains">/quiet</CommandLine></ProcessCreate></RuleGroup>"#,
    );
    assert_eq!(
        decide(&c, &pc(r"C:\x\CMD.EXE", "cmd /c dir")),
        (true, Some("shells".into()))
    );
    // Both match: exclude wins.
    assert_eq!(
        decide(&c, &pc(r"C:\x\cmd.exe", "cmd /QUIET")),
        (false, None)
    );
    // Neither matches, two sets: dropped.
    assert!(!logged(&c, &pc("notepad.exe", "")));
}

#[test]
fn a_single_sets_default_applies_when_nothing_matches() {
    let include = config(
        r#"<ProcessCreate onmatch="include"><Image condition="image">cmd.exe</Image></ProcessCreate>"#,
    );
    assert!(logged(&include, &pc(r"C:\Windows\cmd.exe", "")));
    assert!(!logged(&include, &pc(r"C:\Windows\notepad.exe", "")));
    let exclude = config(
        r#"<ProcessCreate onmatch="exclude"><Image condition="image">cmd.exe</Image></ProcessCreate>"#,
    );
    assert!(!logged(&exclude, &pc(r"C:\Windows\cmd.exe", "")));
    assert!(logged(&exclude, &pc(r"C:\Windows\notepad.exe", "")));
    let mut scratch = Scratch::default();
    let event = pc("notepad.exe", "");
    let decision = exclude.decide(&event, &mut scratch).expect("filtered");
    assert!(matches!(
        decision.by,
        By::SetDefault {
            onmatch: OnMatch::Exclude,
            ..
        }
    ));
}

#[test]
fn types_without_rules_get_sysmons_defaults() {
    let c = config(r#"<ImageLoad onmatch="exclude"/>"#);
    assert!(logged(&c, &pc("a.exe", "")));
    assert!(logged(
        &c,
        &Event::new(Target::ProcessTerminate, &[("Image", "a.exe")])
    ));
    assert!(!logged(
        &c,
        &Event::new(Target::FileCreate, &[("TargetFilename", "x")])
    ));
    assert!(!logged(
        &c,
        &Event::new(Target::FileDelete, &[("TargetFilename", "x")])
    ));
    // An empty exclude set logs everything of its type.
    assert!(logged(
        &c,
        &Event::new(Target::ImageLoad, &[("ImageLoaded", "x.dll")])
    ));
    assert!(!c.can_log(Target::FileCreate));
    assert!(c.can_log(Target::ImageLoad));
    let none = config("");
    assert!(!none.can_log(Target::ImageLoad));
    assert!(none.can_log(Target::ProcessCreate));
}

/// In an AND RuleGroup, filters repeated on one field are OR'ed; inside
/// an AND `<Rule>`, each must match.
#[test]
fn repeated_fields_or_in_an_and_group_but_and_in_an_and_rule() {
    let group = config(
        r#"<RuleGroup name="grp" groupRelation="and"><ProcessCreate onmatch="include">
             <Image condition="image">cmd.exe</Image>
             <Image condition="image">powershell.exe</Image>
             <CommandLine condition="contains">-enc</CommandLine>
           </ProcessCreate></RuleGroup>"#,
    );
    assert_eq!(
        decide(&group, &pc(r"C:\w\powershell.exe", "powershell -enc AAA")),
        (true, Some("grp".into()))
    );
    assert!(logged(&group, &pc(r"C:\w\cmd.exe", "x -ENC")));
    // The other field must still match.
    assert!(!logged(&group, &pc(r"C:\w\cmd.exe", "dir")));
    assert!(!logged(&group, &pc(r"C:\w\notepad.exe", "-enc")));

    let rule = config(
        r#"<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">
             <Rule name="both" groupRelation="and">
               <CommandLine condition="contains">-enc</CommandLine>
               <CommandLine condition="contains">-nop</CommandLine>
             </Rule>
           </ProcessCreate></RuleGroup>"#,
    );
    assert_eq!(
        decide(&rule, &pc("p.exe", "p -nop -enc")),
        (true, Some("both".into()))
    );
    assert!(!logged(&rule, &pc("p.exe", "p -enc")));
    assert!(!logged(&rule, &pc("p.exe", "p -nop")));
}

#[test]
fn rule_or_and_rulename_precedence() {
    let c = config(
        r#"<RuleGroup name="group" groupRelation="or"><ProcessCreate onmatch="include">
             <Rule groupRelation="or">
               <Image condition="image" name="technique_id=T1059.001,technique_name=PowerShell">powershell.exe</Image>
               <Image condition="image">pwsh.exe</Image>
             </Rule>
             <CommandLine condition="contains">mimikatz</CommandLine>
           </ProcessCreate></RuleGroup>"#,
    );
    assert_eq!(
        decide(&c, &pc(r"C:\p\powershell.exe", "")),
        (
            true,
            Some("technique_id=T1059.001,technique_name=PowerShell".into())
        )
    );
    // No name on the filter or the Rule: the RuleGroup's.
    assert_eq!(
        decide(&c, &pc("pwsh.exe", "")),
        (true, Some("group".into()))
    );
    assert_eq!(
        decide(&c, &pc("x.exe", "MIMIKATZ")),
        (true, Some("group".into()))
    );
    assert!(!logged(&c, &pc("x.exe", "")));
}

#[test]
fn env_variables_expand_in_values() {
    let env = |name: &str| (name.eq_ignore_ascii_case("windir")).then(|| r"C:\Windows".to_owned());
    let xml = r#"<Sysmon schemaversion="4.90"><EventFiltering><ProcessCreate onmatch="include">
        <Image condition="begin with">%windir%\Temp\</Image>
        <Image condition="is">%UNSET%\x.exe</Image></ProcessCreate></EventFiltering></Sysmon>"#;
    let c = parse::parse_str(xml, Path::new("e.xml"), &env)
        .expect("loads")
        .config;
    assert!(logged(&c, &pc(r"C:\WINDOWS\temp\a.exe", "")));
    assert!(!logged(&c, &pc(r"%windir%\Temp\a.exe", "")));
    assert!(logged(&c, &pc(r"%unset%\X.exe", "")));
    assert_eq!(parse::expand_env("100%", &env), "100%");
    assert_eq!(parse::expand_env("%%a", &env), "%%a");
}

#[test]
fn file_delete_detected_rules_log_deletes_too() {
    let c = config(
        r#"<FileDeleteDetected onmatch="include"><TargetFilename condition="end with">.exe</TargetFilename></FileDeleteDetected>"#,
    );
    let exe = Event::new(Target::FileDelete, &[("TargetFilename", r"C:\a.EXE")]);
    let txt = Event::new(Target::FileDelete, &[("TargetFilename", r"C:\a.txt")]);
    assert!(logged(&c, &exe));
    assert!(!logged(&c, &txt));
    assert!(c.can_log(Target::FileDelete));
}

/// An absent field is compared as `-`, as Sysmon and ringside write it.
#[test]
fn absent_values_compare_as_a_dash() {
    let c =
        config(r#"<ProcessCreate onmatch="include"><User condition="is">-</User></ProcessCreate>"#);
    assert!(logged(&c, &pc("a.exe", "")));
}

/// LogonId is provided since the driver copies the token's logon session:
/// a filter on it is applied (not ignored), and an unknown session (`-`)
/// does not match a LUID.
#[test]
fn logon_id_filters_apply() {
    let xml = r#"<Sysmon schemaversion="4.90"><EventFiltering>
  <ProcessCreate onmatch="exclude"><LogonId condition="is">0x3e7</LogonId></ProcessCreate>
</EventFiltering></Sysmon>"#;
    let loaded = parse::parse_str(xml, Path::new("l.xml"), &no_env).expect("loads");
    let text = loaded.report.to_string();
    assert!(!text.contains("<LogonId> ignored"), "{text}");
    let in_session = |logon_id: &str| {
        Event::new(
            Target::ProcessCreate,
            &[("Image", r"C:\x\cmd.exe"), ("LogonId", logon_id)],
        )
    };
    assert!(!logged(&loaded.config, &in_session("0x3e7")));
    assert!(logged(&loaded.config, &in_session("0x7e2aa")));
    assert!(logged(&loaded.config, &pc(r"C:\x\cmd.exe", "")));
}

/// CurrentDirectory is provided (the live agent reads it from the new
/// process): a filter on it is applied, and where it could not be read
/// (`-`) it does not match a directory.
#[test]
fn current_directory_filters_apply() {
    let xml = r#"<Sysmon schemaversion="4.90"><EventFiltering>
  <ProcessCreate onmatch="include"><CurrentDirectory condition="begin with">C:\Temp\</CurrentDirectory></ProcessCreate>
</EventFiltering></Sysmon>"#;
    let loaded = parse::parse_str(xml, Path::new("d.xml"), &no_env).expect("loads");
    let text = loaded.report.to_string();
    assert!(!text.contains("<CurrentDirectory> ignored"), "{text}");
    let in_dir = |dir: &str| {
        Event::new(
            Target::ProcessCreate,
            &[("Image", r"C:\x\cmd.exe"), ("CurrentDirectory", dir)],
        )
    };
    assert!(logged(&loaded.config, &in_dir(r"C:\Temp\x\")));
    assert!(!logged(&loaded.config, &in_dir(r"C:\Windows\system32\")));
    assert!(!logged(&loaded.config, &pc(r"C:\x\cmd.exe", "")));
}

fn value_strategy() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r"[aAbB\\;.Ä-]{0,8}").expect("valid regex")
}

proptest! {
    /// The automaton's answer is the definition's for every condition.
    #[test]
    fn automaton_agrees_with_the_definition(
        condition in 0..Condition::ALL.len(),
        value in value_strategy(),
        rule in value_strategy(),
        also in value_strategy(),
    ) {
        let (name, condition) = Condition::ALL[condition];
        let escaped = rule.replace('&', "&amp;").replace('<', "&lt;");
        let c = config(&format!(
            r#"<ProcessCreate onmatch="include"><CommandLine condition="{name}">{escaped}</CommandLine><Image condition="contains">{}</Image></ProcessCreate>"#,
            also.replace('&', "&amp;").replace('<', "&lt;")
        ));
        let mut folded = String::new();
        fold(&mut folded, &value);
        let expected = condition.matches(&folded, &condition.patterns(&rule));
        // The Image filter never matches an absent Image... unless `also`
        // is found in "-": keep it out of the way.
        let event = pc("zzz", &value);
        let image_hit = "zzz".contains(&also.to_lowercase());
        prop_assert_eq!(logged(&c, &event), expected || image_hit);
    }
}

/// A filter without `condition=` tests whole-string equality.
#[test]
fn the_default_condition_is_is() {
    let c = config(
        r#"<ProcessCreate onmatch="include"><Image>C:\Windows\CMD.exe</Image></ProcessCreate>"#,
    );
    assert!(logged(&c, &pc(r"c:\windows\cmd.exe", "")));
    assert!(!logged(&c, &pc(r"c:\windows\cmd.exe2", "")));
    assert!(!logged(&c, &pc("cmd.exe", "")));
}

/// The evaluation order written out plainly, filter by filter with
/// [`Condition::matches`]: what the compiled evaluator must agree with.
fn reference(config: &SysmonConfig, event: &Event) -> (bool, Option<String>) {
    let value = |f: &Filter| -> Option<String> {
        let index = f.field?;
        let mut folded = String::new();
        fold(&mut folded, event.field(index).unwrap_or("-"));
        Some(folded)
    };
    let filter = |f: &Filter| value(f).is_some_and(|v| f.condition.matches(&v, &f.patterns));
    let rule = |r: &RuleBlock| match r.relation {
        Relation::And => !r.filters.is_empty() && r.filters.iter().all(filter),
        Relation::Or => r.filters.iter().any(filter),
    };
    let rule_name = |r: &RuleBlock| {
        r.name.clone().or_else(|| {
            r.filters
                .iter()
                .filter(|f| filter(f))
                .find_map(|f| f.name.clone())
        })
    };
    let set_hit = |set: &RuleSet| -> Option<Option<String>> {
        let group = set.group_name.clone();
        match set.relation {
            Relation::Or => set.items.iter().find_map(|item| match item {
                Item::Filter(f) if filter(f) => Some(f.name.clone().or(group.clone())),
                Item::Rule(r) if rule(r) => Some(rule_name(r).or(group.clone())),
                _ => None,
            }),
            Relation::And => {
                let direct: Vec<&Filter> = set
                    .items
                    .iter()
                    .filter_map(|i| match i {
                        Item::Filter(f) => Some(f),
                        Item::Rule(_) => None,
                    })
                    .collect();
                let fields_ok = direct.iter().all(|f| {
                    direct
                        .iter()
                        .any(|o| o.field_name == f.field_name && filter(o))
                });
                let rules_ok = set.items.iter().all(|i| match i {
                    Item::Rule(r) => rule(r),
                    Item::Filter(_) => true,
                });
                (!set.items.is_empty() && fields_ok && rules_ok).then(|| {
                    set.items
                        .iter()
                        .find_map(|i| match i {
                            Item::Filter(f) if filter(f) => f.name.clone(),
                            Item::Rule(r) => rule_name(r),
                            Item::Filter(_) => None,
                        })
                        .or(group)
                })
            }
        }
    };
    let sysmon = event.target.sysmon_types()[0];
    let sets = config.sets_of(sysmon);
    if sets.is_empty() {
        return (event.target.logged_without_rules(), None);
    }
    for onmatch in [OnMatch::Exclude, OnMatch::Include] {
        for set in sets.iter().filter(|s| s.onmatch == onmatch) {
            if let Some(name) = set_hit(set) {
                return match onmatch {
                    OnMatch::Exclude => (false, None),
                    OnMatch::Include => (true, name),
                };
            }
        }
    }
    match sets {
        [only] => (only.onmatch == OnMatch::Exclude, None),
        _ => (false, None),
    }
}

/// A random filter element on Image or CommandLine.
fn filter_xml() -> impl Strategy<Value = String> {
    (
        0..Condition::ALL.len(),
        prop::bool::ANY,
        proptest::string::string_regex(r"[ab\\;]{0,4}").expect("valid regex"),
        prop::option::of(0..3u8),
    )
        .prop_map(|(c, image, value, name)| {
            let field = if image { "Image" } else { "CommandLine" };
            let name = name.map_or(String::new(), |n| format!(r#" name="f{n}""#));
            format!(
                r#"<{field} condition="{}"{name}>{value}</{field}>"#,
                Condition::ALL[c].0
            )
        })
}

/// A random event element: filters and `<Rule>`s in a RuleGroup.
fn set_xml() -> impl Strategy<Value = String> {
    (
        prop::bool::ANY,
        prop::bool::ANY,
        prop::collection::vec(
            (
                prop::collection::vec(filter_xml(), 1..4),
                prop::option::of((prop::bool::ANY, prop::option::of(0..2u8))),
            ),
            0..4,
        ),
    )
        .prop_map(|(and, include, items)| {
            let body: String = items
                .into_iter()
                .map(|(filters, rule)| match rule {
                    None => filters.concat(),
                    Some((and, name)) => format!(
                        r#"<Rule groupRelation="{}"{}>{}</Rule>"#,
                        if and { "and" } else { "or" },
                        name.map_or(String::new(), |n| format!(r#" name="r{n}""#)),
                        filters.concat()
                    ),
                })
                .collect();
            format!(
                r#"<RuleGroup name="g" groupRelation="{}"><ProcessCreate onmatch="{}">{body}</ProcessCreate></RuleGroup>"#,
                if and { "and" } else { "or" },
                if include { "include" } else { "exclude" }
            )
        })
}

proptest! {
    /// Whole configurations (one to three sets of filters and `<Rule>`s,
    /// AND and OR, include and exclude): the compiled evaluator's decision
    /// and RuleName are the plain evaluation's.
    #[test]
    fn compiled_decisions_are_the_plain_evaluation(
        sets in prop::collection::vec(set_xml(), 1..4),
        image in proptest::string::string_regex(r"[ab\\;]{0,6}").expect("valid regex"),
        command_line in proptest::string::string_regex(r"[ab\\;]{0,6}").expect("valid regex"),
    ) {
        let c = config(&sets.concat());
        let event = pc(&image, &command_line);
        prop_assert_eq!(decide(&c, &event), reference(&c, &event));
    }
}

/// Accounting for every element stays linear in the file's size: a
/// configuration of 100,000 filters (about 3 MB, within MAX_BYTES) loads in
/// well under the time a per-element scan from the file's start would take
/// (minutes).
#[test]
fn a_large_configuration_loads_in_linear_time() {
    let filters = "<Image condition=\"end with\">x.exe</Image>\n".repeat(100_000);
    let started = std::time::Instant::now();
    let c = config(&format!(
        r#"<ProcessCreate onmatch="include">{filters}</ProcessCreate>"#
    ));
    assert_eq!(c.filter_count(), 100_000);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// DriverLoad is applied: its fields filter, its default without rules is
/// Sysmon's (logged), and the public configurations' "exclude
/// Microsoft-signed drivers" filters on `Signature` (the agent's
/// Authenticode check) apply: sysmon-modular's also wants `SignatureStatus`
/// `Valid`, which an embedded signature checked off Windows never is
/// (`Unverified`: no chain to a trusted root was checked).
#[test]
fn driver_load_is_applied_with_sysmons_default_and_signature_filters() {
    let driver = |path: &str| Event::new(Target::DriverLoad, &[("ImageLoaded", path)]);
    let ntfs = driver(r"C:\Windows\System32\drivers\ntfs.sys");
    let temp = driver(r"C:\Temp\evil.sys");
    let signed = |status: &str| {
        Event::new(
            Target::DriverLoad,
            &[
                ("ImageLoaded", r"C:\Windows\System32\drivers\ntfs.sys"),
                ("Signed", "true"),
                ("Signature", "Microsoft Windows"),
                ("SignatureStatus", status),
            ],
        )
    };
    // No DriverLoad element: logged (ProcessCreate rules do not change it).
    let none = config(r#"<ProcessCreate onmatch="include"/>"#);
    assert!(logged(&none, &ntfs));
    assert!(none.can_log(Target::DriverLoad));
    // An include set on ImageLoaded: only what it names, with its RuleName.
    let include = config(
        r#"<RuleGroup groupRelation="or"><DriverLoad onmatch="include">
             <ImageLoaded name="temp_driver" condition="contains">\Temp\</ImageLoaded>
           </DriverLoad></RuleGroup>"#,
    );
    assert_eq!(decide(&include, &temp), (true, Some("temp_driver".into())));
    assert!(!logged(&include, &ntfs));
    // (config, whether a Microsoft-named but unverified driver is logged)
    for (name, unverified_logged) in [
        ("swiftonsecurity-sysmonconfig-export.xml", false),
        ("sysmon-modular-sysmonconfig.xml", true),
    ] {
        let loaded = load(&shared_config(name)).expect("loads");
        let text = loaded.report.to_string();
        assert!(
            !text.contains(
                "Signature is a field of Sysmon's DriverLoad that ringside does not provide"
            ),
            "{name}: {text}"
        );
        assert!(logged(&loaded.config, &ntfs), "{name}");
        assert!(logged(&loaded.config, &temp), "{name}");
        assert!(!logged(&loaded.config, &signed("Valid")), "{name}");
        assert_eq!(
            logged(&loaded.config, &signed("Unverified")),
            unverified_logged,
            "{name}"
        );
    }
}

/// One RegistryEvent element filters 12, 13 and 14: `EventType` tells them
/// apart, `Details` exists only on a value set and `NewName` only on a
/// rename, as on Sysmon's own events. No element: nothing is logged.
#[test]
fn registry_event_filters_key_events_value_sets_and_renames() {
    let c = config(
        r#"<RuleGroup name="" groupRelation="or">
<RegistryEvent onmatch="include">
<TargetObject name="run" condition="contains">\CurrentVersion\Run</TargetObject>
<Details name="encoded" condition="contains">-enc</Details>
<NewName name="renamed-to-run" condition="end with">\Run</NewName>
</RegistryEvent>
<RegistryEvent onmatch="exclude">
<EventType condition="is">CreateKey</EventType>
</RegistryEvent>
</RuleGroup>"#,
    );
    let registry = |fields: &[(&str, &str)]| Event::new(Target::Registry, fields);
    let run = r"HKU\S-1-5-21-1\Software\Microsoft\Windows\CurrentVersion\Run";
    assert!(logged(
        &c,
        &registry(&[("EventType", "SetValue"), ("TargetObject", run)])
    ));
    assert!(logged(
        &c,
        &registry(&[("EventType", "DeleteValue"), ("TargetObject", run)])
    ));
    // Excluded before any include is asked.
    assert!(!logged(
        &c,
        &registry(&[("EventType", "CreateKey"), ("TargetObject", run)])
    ));
    assert!(logged(
        &c,
        &registry(&[
            ("EventType", "SetValue"),
            ("TargetObject", r"HKLM\SOFTWARE\x"),
            ("Details", "powershell -enc AAAA")
        ])
    ));
    assert!(logged(
        &c,
        &registry(&[
            ("EventType", "RenameKey"),
            ("TargetObject", r"HKLM\SOFTWARE\x"),
            (
                "NewName",
                r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run"
            )
        ])
    ));
    assert!(!logged(
        &c,
        &registry(&[
            ("EventType", "SetValue"),
            ("TargetObject", r"HKLM\SOFTWARE\x")
        ])
    ));
    assert!(c.can_log(Target::Registry));
    assert!(
        !config("").can_log(Target::Registry),
        "Sysmon logs none by default"
    );
}

/// ProcessAccess filters apply to ringside's event 10 (fields named as
/// Sysmon names them), and without a ProcessAccess rule nothing is logged,
/// as Sysmon does: the kind is then not asked of the driver at all.
#[test]
fn process_access_rules_filter_event_10() {
    let c = config(
        r#"<RuleGroup groupRelation="or"><ProcessAccess onmatch="include">
             <Rule name="lsass" groupRelation="and">
               <TargetImage condition="end with">\lsass.exe</TargetImage>
               <GrantedAccess condition="is">0x1410</GrantedAccess>
             </Rule>
             <CallTrace condition="contains">UNKNOWN</CallTrace>
           </ProcessAccess></RuleGroup>"#,
    );
    assert!(c.can_log(Target::ProcessAccess));
    let access = |target: &str, granted: &str, trace: &str| {
        Event::new(
            Target::ProcessAccess,
            &[
                ("SourceImage", r"C:\Tools\x.exe"),
                ("TargetImage", target),
                ("GrantedAccess", granted),
                ("CallTrace", trace),
            ],
        )
    };
    let ntdll = r"C:\Windows\SYSTEM32\ntdll.dll+9d4c4";
    assert_eq!(
        decide(
            &c,
            &access(r"C:\Windows\system32\lsass.exe", "0x1410", ntdll)
        ),
        (true, Some("lsass".into()))
    );
    assert!(!logged(
        &c,
        &access(r"C:\Windows\system32\lsass.exe", "0x1000", ntdll)
    ));
    assert!(logged(
        &c,
        &access(
            r"C:\Windows\notepad.exe",
            "0x1000",
            "UNKNOWN(000001A4C8E70C8B)"
        )
    ));
    assert!(!logged(
        &c,
        &access(r"C:\Windows\notepad.exe", "0x1000", ntdll)
    ));
    let none = config("");
    assert!(!none.can_log(Target::ProcessAccess));
}

/// CreateRemoteThread (Sysmon 8) is applied: its filters read the event's
/// Source/Target fields, and with no element it is logged, as Sysmon logs
/// event 8 by default.
#[test]
fn create_remote_thread_filters_apply() {
    let thread = |source: &str, target: &str, function: &str| {
        Event::new(
            Target::CreateRemoteThread,
            &[
                ("SourceImage", source),
                ("TargetImage", target),
                ("StartFunction", function),
            ],
        )
    };
    let c = config(
        r#"<CreateRemoteThread onmatch="exclude">
             <SourceImage condition="is">C:\Windows\System32\svchost.exe</SourceImage>
             <StartFunction condition="is">CtrlRoutine</StartFunction>
           </CreateRemoteThread>"#,
    );
    let lsass = r"C:\Windows\System32\lsass.exe";
    assert!(!logged(
        &c,
        &thread(r"C:\Windows\System32\svchost.exe", lsass, "-")
    ));
    assert!(!logged(&c, &thread(r"C:\x\a.exe", lsass, "CtrlRoutine")));
    assert!(logged(&c, &thread(r"C:\x\a.exe", lsass, "LoadLibraryW")));
    let none = config("");
    assert!(none.can_log(Target::CreateRemoteThread));
    assert!(logged(&none, &thread(r"C:\x\a.exe", lsass, "-")));
    let only = config(
        r#"<CreateRemoteThread onmatch="include">
             <TargetImage condition="end with">\lsass.exe</TargetImage>
           </CreateRemoteThread>"#,
    );
    assert!(logged(&only, &thread(r"C:\x\a.exe", lsass, "-")));
    assert!(!logged(
        &only,
        &thread(r"C:\x\a.exe", r"C:\Windows\notepad.exe", "-")
    ));
}

/// One PipeEvent element filters 17 and 18 (`EventType` tells them apart,
/// one field list): its filters read PipeName, Image and EventType, and
/// with no element no pipe event is logged.
#[test]
fn pipe_event_filters_apply_to_created_and_connected_pipes() {
    let pipe = |event_type: &str, name: &str, image: &str| {
        Event::new(
            Target::Pipe,
            &[
                ("EventType", event_type),
                ("PipeName", name),
                ("Image", image),
            ],
        )
    };
    let c = config(
        r#"<PipeEvent onmatch="include">
             <PipeName condition="begin with">\postex_</PipeName>
             <PipeName condition="begin with">\MSSE-</PipeName>
           </PipeEvent>
           <PipeEvent onmatch="exclude">
             <Image condition="is">C:\Program Files\Defender\MsMpEng.exe</Image>
           </PipeEvent>"#,
    );
    let beacon = r"C:\Users\bob\AppData\Local\Temp\b.exe";
    assert!(logged(
        &c,
        &pipe("CreatePipe", r"\MSSE-1234-server", beacon)
    ));
    assert!(logged(&c, &pipe("ConnectPipe", r"\postex_ab12", beacon)));
    assert!(!logged(&c, &pipe("CreatePipe", r"\lsarpc", beacon)));
    assert!(!logged(
        &c,
        &pipe(
            "ConnectPipe",
            r"\MSSE-1-server",
            r"C:\Program Files\Defender\MsMpEng.exe"
        )
    ));
    let connects_only = config(
        r#"<PipeEvent onmatch="include">
             <EventType condition="is">ConnectPipe</EventType>
           </PipeEvent>"#,
    );
    assert!(logged(&connects_only, &pipe("ConnectPipe", r"\x", beacon)));
    assert!(!logged(&connects_only, &pipe("CreatePipe", r"\x", beacon)));
    assert!(c.can_log(Target::Pipe));
    assert!(
        !config("").can_log(Target::Pipe),
        "no element, no pipe event"
    );
    assert_eq!(Target::from_event_id(18), Some(Target::Pipe));
}
