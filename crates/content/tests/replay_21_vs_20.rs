//! A bundle whose rule names a field the event type does not carry (a 21st
//! process-creation field) is rejected by `Content::reload` while another
//! thread evaluates events: the running bundle stays in force, and every
//! whoami event the thread evaluated alerted (counted from the engine's
//! matches). The same scenario through the agent, counted from its output,
//! is `agent/tests/replay_21_vs_20.rs`.

use ringside_content::compile::Reason;
use ringside_content::schema::{EventFields, Logsource, OwnedEvent};
use ringside_content::{Bundle, BundleError, Content, LoadPolicy, Scratch};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

mod common;

use common::rules::{BAD, GOOD};

fn event(i: usize) -> OwnedEvent {
    let mut e = OwnedEvent::empty(Logsource::ProcessCreation);
    e.set(
        "Image",
        if i % 2 == 0 {
            "C:\\Windows\\System32\\whoami.exe"
        } else {
            "C:\\Windows\\notepad.exe"
        },
    );
    e.set("ProcessId", i.to_string());
    e
}

#[test]
fn bundle_naming_an_absent_field_is_rejected_and_the_last_good_one_keeps_running() {
    let good_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(good_dir.path().join("whoami.yml"), GOOD).expect("write");
    let bad_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(bad_dir.path().join("whoami.yml"), GOOD).expect("write");
    std::fs::create_dir(bad_dir.path().join("new")).expect("mkdir");
    std::fs::write(bad_dir.path().join("new/session.yml"), BAD).expect("write");

    let content = Arc::new(Content::new(
        Bundle::load(good_dir.path()).expect("good bundle").bundle,
    ));

    // A consumer evaluates a stream of events while the bad bundle arrives.
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (content, stop) = (Arc::clone(&content), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut scratch = Scratch::default();
            let (mut produced, mut alerts) = (0usize, 0usize);
            while !stop.load(Ordering::Relaxed) || produced < 20_000 {
                let bundle = content.current();
                for _ in 0..100 {
                    let e = event(produced);
                    produced += 1;
                    bundle
                        .engine
                        .for_each_match(&e, &mut scratch, |_| alerts += 1);
                }
            }
            (produced, alerts)
        })
    };

    let before = content.current();
    let error = content
        .reload(bad_dir.path(), LoadPolicy::Strict)
        .expect_err("strict load must reject");
    let BundleError::Rejected {
        accepted,
        rejections,
    } = &error
    else {
        panic!("wrong error: {error}")
    };
    assert_eq!(*accepted, 1);
    assert_eq!(rejections.len(), 1);
    let rejection = &rejections[0];
    assert!(rejection.path.ends_with("new/session.yml"));
    assert_eq!(rejection.line, 9);
    assert_eq!(
        rejection.reason,
        Reason::FieldNotProvided {
            field: "TerminalSessionId".into(),
            logsource: Logsource::ProcessCreation
        }
    );
    let message = error.to_string();
    assert!(message.contains("session.yml:9: field `TerminalSessionId` is not provided by ringside for process_creation"), "{message}");
    // The last known good bundle is still the one in force.
    assert!(Arc::ptr_eq(&before, &content.current()));
    assert_eq!(content.current().source, good_dir.path());
    assert_eq!(content.current().engine.rule_count(), 1);

    stop.store(true, Ordering::Relaxed);
    let (produced, alerts) = consumer.join().expect("consumer ran");
    assert_eq!(
        alerts,
        produced.div_ceil(2),
        "every whoami event alerted under the old bundle"
    );

    // Lenient policy takes the good rule and reports the bad one.
    let report = content
        .reload(bad_dir.path(), LoadPolicy::Lenient)
        .expect("lenient load");
    assert_eq!(
        (report.bundle.engine.rule_count(), report.rejections.len()),
        (1, 1)
    );
    let alerts = content.current().engine.evaluate(&event(0));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule_id, "11111111-0000-0000-0000-000000000001");
    assert_eq!(alerts[0].event.logsource(), Logsource::ProcessCreation);
    let json = serde_json::to_string(&alerts[0]).expect("alert serializes");
    assert!(
        json.contains(r#""Image":"C:\\Windows\\System32\\whoami.exe""#),
        "{json}"
    );
}
