//! Content changes while the agent runs: the watcher's compiled bundle is
//! swapped in between batches (no event lost), a bad change is reported
//! (1005) and the running bundle stays, a bundle that blows its runtime
//! budget is rolled back, and the last known good bundle on disk is used
//! when the configured one is broken at start.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ringside_agent::cli::{RulesArgs, start_detector};
use ringside_agent::detect::{Budget, Clock, Detector, Notice};
use ringside_agent::enrich::EnrichConfig;
use ringside_agent::pipeline::{Config, Pipeline};
use ringside_agent::sink::JsonLines;
use ringside_agent::synth::{BatchBuilder, sid};
use ringside_content::{
    Bundle, BundleWatcher, CrashGuard, LastKnownGood, LoadPolicy, RulesLocation, Validator,
    WatchEvent,
};
use serde_json::Value;
use support::{
    FIELD_NOT_PROVIDED, agent, at, image_rule as rule, lines, scenario, the_rejection, write_rule,
};

/// A clock that advances by `step` nanoseconds per reading, so each
/// evaluation "costs" exactly `step`: deterministic, no real timing.
#[derive(Debug, Clone, Default)]
struct SteppedClock {
    now: Arc<AtomicU64>,
    step: Arc<AtomicU64>,
}

impl SteppedClock {
    fn cost(&self, cost: Duration) {
        self.step.store(cost.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for SteppedClock {
    fn now(&self) -> Duration {
        let step = self.step.load(Ordering::SeqCst);
        Duration::from_nanos(self.now.fetch_add(step, Ordering::SeqCst) + step)
    }
}

/// Process creations alternating cmd.exe and explorer.exe.
struct Events {
    builder: BatchBuilder,
    pid: u32,
}

impl Events {
    fn new() -> Self {
        Events {
            builder: BatchBuilder::new(),
            pid: 100,
        }
    }

    fn batch(&mut self, n: usize) -> Vec<u8> {
        let user = sid(5, &[21, 1, 2, 3, 1001]);
        let medium = sid(16, &[0x2000]);
        for _ in 0..n {
            self.pid += 4;
            let image = if self.pid % 8 == 0 {
                r"\??\C:\Windows\System32\cmd.exe"
            } else {
                r"\??\C:\Windows\explorer.exe"
            };
            self.builder.process_create(
                at(self.pid, u64::from(self.pid)),
                4,
                image,
                image,
                &user,
                &medium,
            );
        }
        self.builder.take()
    }
}

fn pipeline(detector: Detector) -> Pipeline {
    let mut pipeline = Pipeline::new(Config {
        enrich: EnrichConfig::none(),
        ..Config::default()
    });
    pipeline.detector = Some(detector);
    pipeline
}

/// An agent running the cmd.exe rule from `DIR/rules`, with the watcher
/// that treats that content as loaded (strict policy, stepped clock).
struct Running {
    rules: std::path::PathBuf,
    watcher: BundleWatcher,
    pipeline: Pipeline,
}

fn running(dir: &Path) -> Running {
    let rules = dir.join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    write_rule(&rules, "cmd.yml", &rule(1, "cmd.exe"));
    let location = RulesLocation::Directory(rules.clone());
    let fingerprint = location.fingerprint();
    let report = Bundle::load(&rules).expect("good bundle");
    let watcher = BundleWatcher::new(location, LoadPolicy::Strict, fingerprint);
    let detector = Detector::start(report).with_clock(Box::new(SteppedClock::default()));
    Running {
        rules,
        watcher,
        pipeline: pipeline(detector),
    }
}

/// Runs `batch` and returns the lines it produced.
fn run(pipeline: &mut Pipeline, batch: &[u8]) -> Vec<Value> {
    let mut sink = JsonLines::new(Vec::new());
    pipeline.batch(batch, 0, &mut sink).expect("in-memory sink");
    let bytes = sink.into_inner().expect("flush");
    lines(std::str::from_utf8(&bytes).expect("UTF-8"))
}

fn count(lines: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    lines.iter().filter(|l| pred(l)).count()
}

fn event_id(id: u64) -> impl Fn(&Value) -> bool {
    move |l| l.get("Alert").is_none() && l["EventID"] == id
}

fn alerts_for(image: &'static str) -> impl Fn(&Value) -> bool {
    move |l| {
        l.get("Alert").is_some()
            && l["Alert"]["Title"]
                .as_str()
                .is_some_and(|t| t.starts_with(image))
    }
}

#[test]
fn watcher_swaps_a_good_change_and_keeps_the_bundle_on_a_bad_one_without_losing_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Running {
        rules,
        mut watcher,
        mut pipeline,
    } = running(dir.path());
    let mut events = Events::new();
    let (mut sent, mut out) = (0usize, Vec::new());

    // Nothing changed: nothing to do.
    assert!(watcher.poll().is_none());
    sent += 10;
    out.extend(run(&mut pipeline, &events.batch(10)));

    // A good change: a second rule. Compiled by the watcher, swapped in at
    // the next batch.
    write_rule(&rules, "explorer.yml", &rule(2, "explorer.exe"));
    let update = watcher.poll().expect("a change");
    assert!(matches!(update, WatchEvent::Compiled(_)), "{update:?}");
    pipeline.detector.as_mut().expect("detector").apply(update);
    sent += 10;
    let after_good = run(&mut pipeline, &events.batch(10));
    assert_eq!(
        count(&after_good, event_id(1006)),
        1,
        "one ContentActivated"
    );
    assert_eq!(count(&after_good, alerts_for("explorer.exe")), 5);
    out.extend(after_good);

    // A bad change (a rule naming a field the logsource does not carry):
    // reported, and the two-rule bundle keeps running.
    write_rule(&rules, "session.yml", FIELD_NOT_PROVIDED);
    let update = watcher.poll().expect("a change");
    pipeline.detector.as_mut().expect("detector").apply(update);
    sent += 10;
    let after_bad = run(&mut pipeline, &events.batch(10));
    let (rejected, reason) = the_rejection(&after_bad);
    assert!(
        reason.contains("session.yml:10") && reason.contains("TerminalSessionId"),
        "the reason says what and where: {reason}"
    );
    assert_eq!(
        rejected["Running"].as_str(),
        Some(rules.to_str().expect("UTF-8 path"))
    );
    assert_eq!(
        count(&after_bad, alerts_for("explorer.exe")),
        5,
        "old bundle runs"
    );
    assert_eq!(count(&after_bad, alerts_for("cmd.exe")), 5);
    // The same bad content is not reported again.
    assert!(watcher.poll().is_none());
    out.extend(after_bad);

    // Every event sent came out exactly once, across both swaps.
    assert_eq!(count(&out, event_id(1)), sent);
    assert_eq!(pipeline.counters.events_received() as usize, sent);
}

/// The July 2024 failure, in user mode: content that `content check`
/// accepted, then took the process down at load (a 24 KB regular
/// expression: 3 GB, out of memory). Now it is refused while compiling,
/// for the budget it exceeds; the running bundle keeps matching and the
/// output says why (1005).
#[test]
fn over_budget_content_is_refused_and_the_running_bundle_keeps_matching() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Running {
        rules,
        mut watcher,
        mut pipeline,
    } = running(dir.path());
    let mut events = Events::new();

    let bomb = format!(
        "title: regex bomb
id: 5b0e3c55-0d1f-4d51-9d5b-1d2a3c4e5fff
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        CommandLine|re: '{}'
    condition: selection
",
        "ab*".repeat(8000)
    );
    write_rule(&rules, "bomb.yml", &bomb);
    let update = watcher.poll().expect("a change");
    pipeline.detector.as_mut().expect("detector").apply(update);
    let after = run(&mut pipeline, &events.batch(10));
    let (_, reason) = the_rejection(&after);
    assert!(
        reason.contains("bomb.yml:8") && reason.contains("over budget: value bytes"),
        "the reason names the file, line and budget: {reason}"
    );
    assert_eq!(
        count(&after, alerts_for("cmd.exe")),
        5,
        "the old bundle runs"
    );
    assert_eq!(count(&after, event_id(1)), 10, "no event lost");
}

#[test]
fn spawned_watcher_delivers_a_change_off_the_event_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_rule(dir.path(), "cmd.yml", &rule(1, "cmd.exe"));
    let location = RulesLocation::Directory(dir.path().to_owned());
    let fingerprint = location.fingerprint();
    let handle = BundleWatcher::new(location, LoadPolicy::Strict, fingerprint)
        .spawn(Duration::from_millis(20))
        .expect("thread");
    write_rule(dir.path(), "explorer.yml", &rule(2, "explorer.exe"));
    match handle.next_timeout(Duration::from_secs(30)) {
        Some(WatchEvent::Compiled(report)) => assert_eq!(report.bundle.engine.rule_count(), 2),
        other => panic!("expected the compiled change, got {other:?}"),
    }
}

#[test]
fn a_bundle_over_its_runtime_budget_is_rolled_back_deterministically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    for d in [&a, &b, &c] {
        std::fs::create_dir(d).expect("mkdir");
    }
    write_rule(&a, "cmd.yml", &rule(1, "cmd.exe"));
    write_rule(&b, "explorer.yml", &rule(2, "explorer.exe"));
    write_rule(&c, "both.yml", &rule(3, "exe"));
    let state = dir.path().join("state");
    let lkg = LastKnownGood::in_state_dir(&state);
    let clock = SteppedClock::default();
    let budget = Budget {
        per_event: Duration::from_millis(1),
        max_over: 2,
        window: 10,
    };
    let detector = Detector::start(Bundle::load(&a).expect("a"))
        .with_clock(Box::new(clock.clone()))
        .with_last_known_good(lkg.clone())
        .with_budget(budget);
    let mut pipeline = pipeline(detector);
    let mut events = Events::new();
    let source = |p: &Pipeline| {
        p.detector
            .as_ref()
            .expect("detector")
            .bundle()
            .source
            .clone()
    };

    // A passes probation (10 cheap events) and becomes last known good.
    clock.cost(Duration::from_micros(10));
    run(&mut pipeline, &events.batch(10));
    assert!(!pipeline.detector.as_ref().expect("detector").on_probation());
    assert!(lkg.path().join("rules/cmd.yml").is_file());

    // B is activated and each of its evaluations costs 5 ms: two over-budget
    // events are tolerated (max_over = 2), the third rolls it back.
    pipeline
        .detector
        .as_mut()
        .expect("detector")
        .activate(Bundle::load(&b).expect("b"));
    clock.cost(Duration::from_millis(5));
    let first = run(&mut pipeline, &events.batch(2));
    assert_eq!(source(&pipeline), b, "2 over budget: still B");
    assert_eq!(count(&first, event_id(1006)), 1);
    let third = run(&mut pipeline, &events.batch(1));
    assert_eq!(source(&pipeline), a, "3rd over budget: back to A");
    let (_, reason) = the_rejection(&third);
    assert!(
        reason.contains("3 of its first 3") && reason.contains("rolled back"),
        "{reason}"
    );
    assert_eq!(pipeline.detector.as_ref().expect("detector").rollbacks, 1);
    // B never became last known good.
    assert!(lkg.path().join("rules/cmd.yml").is_file());
    assert!(!lkg.path().join("rules/explorer.yml").exists());
    // A is not on probation again: slow events now change nothing.
    run(&mut pipeline, &events.batch(20));
    assert_eq!(source(&pipeline), a);

    // C: two slow events within probation are tolerated; it passes, and
    // slow events after probation do not roll it back.
    pipeline
        .detector
        .as_mut()
        .expect("detector")
        .activate(Bundle::load(&c).expect("c"));
    clock.cost(Duration::from_millis(5));
    run(&mut pipeline, &events.batch(2));
    clock.cost(Duration::ZERO);
    run(&mut pipeline, &events.batch(8));
    clock.cost(Duration::from_millis(5));
    let later = run(&mut pipeline, &events.batch(10));
    assert_eq!(source(&pipeline), c);
    assert_eq!(count(&later, event_id(1005)), 0);
    assert!(lkg.path().join("rules/both.yml").is_file());
    assert!(!lkg.path().join("rules/cmd.yml").exists());
}

fn rules_args(rules: &Path) -> RulesArgs {
    RulesArgs {
        rules: Some(rules.to_owned()),
        lenient_rules: false,
        rules_pubkey: None,
        rules_signature: None,
        state_dir: None,
        rules_budget_us: 2000,
        rules_budget_over: 100,
        rules_probation: 0,
    }
}

#[test]
fn last_known_good_is_loaded_when_the_configured_bundle_is_broken_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    write_rule(&rules, "cmd.yml", &rule(1, "cmd.exe"));
    let state = dir.path().join("state");
    let args = rules_args(&rules);
    let location = RulesLocation::Directory(rules.clone());

    // First start: the bundle loads; with no probation it is saved at once.
    let (mut detector, _) = start_detector(&location, &args, Some(&state)).expect("starts");
    assert!(matches!(
        detector.take_notices()[..],
        [Notice::Activated { .. }]
    ));
    let lkg = LastKnownGood::in_state_dir(&state);
    assert!(lkg.path().join("rules/cmd.yml").is_file());

    // The configured bundle breaks.
    write_rule(&rules, "session.yml", FIELD_NOT_PROVIDED);
    // Without a state directory the agent refuses to start, saying where.
    let error = start_detector(&location, &args, None).expect_err("refused");
    assert!(error.to_string().contains("session.yml:10"), "{error}");
    // With one, it starts on the last known good bundle and says so.
    let (mut detector, _) = start_detector(&location, &args, Some(&state)).expect("falls back");
    assert_eq!(detector.bundle().source, lkg.path().join("rules"));
    assert_eq!(detector.bundle().engine.rule_count(), 1);
    let notices = detector.take_notices();
    match &notices[..] {
        [
            Notice::Rejected { source, reason, .. },
            Notice::Activated { .. },
        ] => {
            assert_eq!(source, &rules);
            assert!(reason.contains("TerminalSessionId"), "{reason}");
        }
        other => panic!("expected rejected then activated, got {other:?}"),
    }
    // The broken bundle did not overwrite the copy.
    assert!(!lkg.path().join("rules/session.yml").exists());
}

/// A compile that fails in a way no budget foresaw (forced here: an abort
/// inside the compile step of a test build) happens in the separate
/// `content validate` process: the watcher reports it, the running agent
/// is untouched and keeps matching with its bundle.
#[test]
fn a_compile_that_aborts_takes_down_only_the_separate_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Running {
        rules,
        watcher,
        mut pipeline,
    } = running(dir.path());
    let validate = rules.clone();
    let validator = Validator {
        command: Box::new(move |_| {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ringside-agent"));
            command
                .args(["content", "validate", "--rules"])
                .arg(&validate)
                .env("RINGSIDE_TEST_ABORT_IN_COMPILE", "1");
            command
        }),
        timeout: Duration::from_secs(60),
    };
    let mut watcher = watcher.with_validator(validator);
    let mut events = Events::new();

    write_rule(&rules, "explorer.yml", &rule(2, "explorer.exe"));
    let update = watcher.poll().expect("a change");
    pipeline.detector.as_mut().expect("detector").apply(update);
    let after = run(&mut pipeline, &events.batch(10));
    let (_, reason) = the_rejection(&after);
    assert!(
        reason.contains("separate process") && reason.contains("signal 6"),
        "{reason}"
    );
    assert_eq!(
        count(&after, alerts_for("cmd.exe")),
        5,
        "the old bundle runs"
    );
    assert_eq!(count(&after, alerts_for("explorer.exe")), 0);
    // Not compiled again until the content changes.
    assert!(watcher.poll().is_none());
}

/// A process that died while activating content leaves the crash guard's
/// marker behind; the next start skips that content, runs the last known
/// good bundle and says why, instead of dying on it again.
#[test]
fn a_restart_after_a_crash_during_activation_skips_that_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    write_rule(&rules, "cmd.yml", &rule(1, "cmd.exe"));
    let state = dir.path().join("state");
    let args = rules_args(&rules);
    let location = RulesLocation::Directory(rules.clone());
    let (_, _) = start_detector(&location, &args, Some(&state)).expect("starts");
    let lkg = LastKnownGood::in_state_dir(&state);
    assert!(lkg.path().join("rules/cmd.yml").is_file());

    // New content arrives; the process dies while activating it (what it
    // leaves behind: the marker naming that content).
    write_rule(&rules, "explorer.yml", &rule(2, "explorer.exe"));
    CrashGuard::in_state_dir(&state)
        .arm(location.fingerprint())
        .expect("marker");
    let (mut detector, _) = start_detector(&location, &args, Some(&state)).expect("restarts");
    assert_eq!(detector.bundle().source, lkg.path().join("rules"));
    assert_eq!(
        detector.bundle().engine.rule_count(),
        1,
        "the last known good"
    );
    match &detector.take_notices()[..] {
        [
            Notice::Rejected { source, reason, .. },
            Notice::Activated { .. },
        ] => {
            assert_eq!(source, &rules);
            assert!(reason.contains("stopped while activating"), "{reason}");
        }
        other => panic!("expected rejected then activated, got {other:?}"),
    }
    // Once the content changes again it is tried again.
    write_rule(&rules, "explorer.yml", &rule(3, "explorer.exe"));
    let (detector, _) = start_detector(&location, &args, Some(&state)).expect("starts");
    assert_eq!(detector.bundle().engine.rule_count(), 2);
}

#[test]
fn replay_falls_back_to_last_known_good_and_reports_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    write_rule(&rules, "cmd.yml", &rule(1, "cmd.exe"));
    let replay = dir.path().join("scenario.replay");
    std::fs::write(&replay, scenario()).expect("write");
    let state = dir.path().join("state");
    let args = [
        "replay",
        replay.to_str().expect("UTF-8"),
        "--no-enrich",
        "--rules",
        rules.to_str().expect("UTF-8"),
        "--state-dir",
        state.to_str().expect("UTF-8"),
        "--rules-probation",
        "1",
    ];
    let (code, stdout, stderr) = agent(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(count(&lines(&stdout), alerts_for("cmd.exe")), 1);

    write_rule(&rules, "session.yml", FIELD_NOT_PROVIDED);
    let (code, stdout, stderr) = agent(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("last known good"), "{stderr}");
    let out = lines(&stdout);
    assert_eq!(count(&out, event_id(1005)), 1);
    assert_eq!(count(&out, event_id(1006)), 1);
    assert_eq!(count(&out, alerts_for("cmd.exe")), 1, "detection goes on");
}

#[test]
fn replay_reads_a_signed_archive_only_with_the_right_key() {
    use ed25519_dalek::{Signer, SigningKey};
    let dir = tempfile::tempdir().expect("tempdir");
    let text = rule(1, "cmd.exe");
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "proc/cmd.yml", text.as_bytes())
        .expect("append");
    let archive = builder.into_inner().expect("finish");
    // Keys are made here from fixed seeds; none is committed.
    let trusted = SigningKey::from_bytes(&[3; 32]);
    let other = SigningKey::from_bytes(&[4; 32]);
    let bundle = dir.path().join("rules.rsb");
    std::fs::write(&bundle, &archive).expect("write");
    std::fs::write(
        dir.path().join("rules.rsb.sig"),
        trusted.sign(&archive).to_bytes(),
    )
    .expect("write");
    let key = dir.path().join("trusted.pub");
    std::fs::write(&key, trusted.verifying_key().as_bytes()).expect("write");
    let other_key = dir.path().join("other.pub");
    std::fs::write(&other_key, other.verifying_key().as_bytes()).expect("write");
    let replay = dir.path().join("scenario.replay");
    std::fs::write(&replay, scenario()).expect("write");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            replay.to_str().expect("UTF-8"),
            "--no-enrich",
            "--rules",
            bundle.to_str().expect("UTF-8"),
        ];
        args.extend_from_slice(extra);
        agent(&args)
    };

    let (code, _, stderr) = run(&[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--rules-pubkey"), "{stderr}");

    let (code, stdout, stderr) = run(&["--rules-pubkey", key.to_str().expect("UTF-8")]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(count(&lines(&stdout), alerts_for("cmd.exe")), 1);

    let (code, stdout, stderr) = run(&["--rules-pubkey", other_key.to_str().expect("UTF-8")]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("rules.rsb") && stderr.contains("signature does not match"),
        "{stderr}"
    );
}
