//! Files the agent is pointed at may be anything: a huge sparse file, a
//! FIFO, a device, a directory, a tree of a million files. Each is refused
//! with what it is, at once, without reading it or waiting on it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ringside_content::bundle::rule_files;
use ringside_content::regression::Outcome;
use ringside_content::{Bundle, BundleError, PublicKey, check, regression};

const SIGMA: &str = "../../../shared/data/sigma";

/// RFC 8032's first test public key (any valid key: nothing is verified).
fn test_key() -> PublicKey {
    PublicKey::parse(b"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        .expect("a valid ed25519 key")
}

fn sigma() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(SIGMA)
}

/// A regression folder for one SigmaHQ rule whose sample is `sample`
/// (created by `make` at the given path).
fn regression_with(sample: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("proc_creation_win_bitsadmin_download");
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::copy(
        sigma().join(
            "regression_data/rules/windows/process_creation/proc_creation_win_bitsadmin_download/info.yml",
        ),
        folder.join("info.yml"),
    )
    .expect("info.yml");
    sample(&folder.join("sample.json"));
    let root = dir.path().to_owned();
    (dir, root)
}

fn bad_sample(report: &ringside_content::RegressionReport) -> String {
    match &report.cases[..] {
        [case] => match &case.outcome {
            Outcome::BadSample(why) => why.clone(),
            other => panic!("expected a bad sample, got {other:?}"),
        },
        other => panic!("expected one case, got {other:?}"),
    }
}

#[cfg(unix)]
#[test]
fn a_sample_linked_to_dev_zero_is_refused_not_read() {
    let (_dir, root) = regression_with(|sample| {
        std::os::unix::fs::symlink("/dev/zero", sample).expect("symlink");
    });
    let rules = sigma().join("rules/windows/process_creation");
    let report = regression(&rules, &root).expect("runs");
    let why = bad_sample(&report);
    assert!(
        why.contains("not a regular file (a character device)"),
        "{why}"
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_sample_or_signature_does_not_block() {
    let mkfifo = |path: &Path| {
        let made = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo");
        assert!(made.success());
    };
    // Run on a thread with a deadline: a blocking open would hang forever.
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (_dir, root) = regression_with(|sample| mkfifo(sample));
        let rules = sigma().join("rules/windows/process_creation");
        let report = regression(&rules, &root).expect("runs");
        let sample = bad_sample(&report);

        let dir = tempfile::tempdir().expect("tempdir");
        let archive = dir.path().join("rules.rsb");
        std::fs::write(&archive, b"not read before the signature").expect("write");
        let signature = dir.path().join("rules.rsb.sig");
        mkfifo(&signature);
        let key = test_key();
        let signed = Bundle::load_signed(&archive, &signature, &key).map(|_| ());
        let _ = done.send((sample, signed));
    });
    let (sample, signed) = wait
        .recv_timeout(Duration::from_secs(30))
        .expect("a FIFO blocked the reader");
    assert!(sample.contains("not a regular file (a FIFO)"), "{sample}");
    match signed {
        Err(BundleError::Io { error, .. }) => {
            assert!(error.contains("not a regular file (a FIFO)"), "{error}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_directory_signature_says_it_is_a_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("rules.rsb");
    std::fs::write(&archive, b"x").expect("write");
    let signature = dir.path().join("rules.rsb.sig");
    std::fs::create_dir(&signature).expect("mkdir");
    let key = test_key();
    match Bundle::load_signed(&archive, &signature, &key) {
        Err(BundleError::Io { error, .. }) => {
            assert!(
                error.contains("not a regular file (a directory)"),
                "{error}"
            );
            assert!(!error.contains("4096"), "{error}");
        }
        other => panic!("{:?}", other.map(|r| r.files)),
    }
}

#[test]
fn a_huge_sparse_rule_file_is_refused_from_its_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::File::create(dir.path().join("huge.yml"))
        .and_then(|f| f.set_len(2 << 30))
        .expect("sparse");
    let report = check(dir.path()).expect("check runs");
    let line = report.rejections[0].to_string();
    assert!(line.contains("2147483648 bytes"), "{line}");
    match Bundle::load(dir.path()) {
        Err(BundleError::Io { error, .. }) => assert!(error.contains("2147483648"), "{error}"),
        other => panic!("{:?}", other.map(|r| r.files)),
    }
}

#[test]
fn a_rule_tree_is_walked_only_up_to_the_archive_entry_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limit = ringside_content::ArchiveLimits::default().max_entries;
    for i in 0..=limit {
        std::fs::write(dir.path().join(format!("{i}.txt")), b"").expect("write");
    }
    match rule_files(dir.path()) {
        Err(BundleError::Io { error, .. }) => {
            assert!(
                error.contains(&format!("more than {limit} entries")),
                "{error}"
            )
        }
        other => panic!("{other:?}"),
    }
}
