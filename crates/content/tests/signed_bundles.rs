//! Signed archive bundles: the signature is verified over the archive's
//! bytes before anything in it is read; verified archives are unpacked in
//! memory within limits and compiled like a directory.

use ed25519_dalek::{Signer, SigningKey};
use ringside_content::archive::{ArchiveError, ArchiveLimits, PublicKey, SignatureError};
use ringside_content::compile::Reason;
use ringside_content::{Bundle, BundleError, LoadPolicy};
use std::path::{Path, PathBuf};

mod common;

// `BAD` is rejected when compiled: getting any other error for an archive
// holding it shows it was never parsed.
use common::rules::{BAD, GOOD};

/// A key made in the test from a fixed seed (no private key is committed;
/// the seed is just test data).
fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn public(key: &SigningKey) -> PublicKey {
    PublicKey::parse(key.verifying_key().as_bytes()).expect("a valid key")
}

fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, *bytes)
            .expect("append");
    }
    builder.into_inner().expect("finish")
}

/// Writes `archive` and its signature by `signer` into `dir`; returns the paths.
fn write_signed(dir: &Path, archive: &[u8], signer: &SigningKey) -> (PathBuf, PathBuf) {
    let path = dir.join("rules.rsb");
    let sig = dir.join("rules.rsb.sig");
    std::fs::write(&path, archive).expect("write");
    std::fs::write(&sig, signer.sign(archive).to_bytes()).expect("write");
    (path, sig)
}

fn signature_error(result: Result<ringside_content::LoadReport, BundleError>) -> SignatureError {
    match result {
        Err(BundleError::Signature { error, .. }) => error,
        other => panic!("expected a signature error, got {other:?}"),
    }
}

#[test]
fn good_signature_loads_and_names_rules_inside_the_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = key(7);
    let archive = tar(&[
        ("./README.txt", b"not a rule" as &[u8]),
        ("./proc/whoami.yml", GOOD.as_bytes()),
    ]);
    let (path, sig) = write_signed(dir.path(), &archive, &signer);
    let report = Bundle::load_signed(&path, &sig, &public(&signer)).expect("loads");
    assert_eq!(report.files, 1, "only the *.yml file is a rule");
    assert_eq!(report.bundle.engine.rule_count(), 1);
    assert_eq!(report.bundle.source, path);
    let rule = report.bundle.engine.rules().next().expect("one rule");
    assert_eq!(rule.path, path.join("proc/whoami.yml"));

    // Hex encodings of signature and key are accepted too.
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    std::fs::write(&sig, hex(&signer.sign(&archive).to_bytes()) + "\n").expect("write");
    let key_hex =
        PublicKey::parse(hex(signer.verifying_key().as_bytes()).as_bytes()).expect("hex key");
    assert!(Bundle::load_signed(&path, &sig, &key_hex).is_ok());
}

#[test]
fn tampered_archive_is_rejected_before_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = key(7);
    let archive = tar(&[("whoami.yml", GOOD.as_bytes())]);
    let (path, sig) = write_signed(dir.path(), &archive, &signer);
    // Change one byte of the rule text after signing: still valid tar and
    // valid YAML, but not what was signed.
    let mut tampered = archive.clone();
    let at = tampered
        .windows(6)
        .position(|w| w == b"whoami")
        .expect("rule text in the archive");
    let at = tampered[at + 1..]
        .windows(6)
        .position(|w| w == b"whoami")
        .map(|p| p + at + 1)
        .unwrap_or(at);
    tampered[at] = b'W';
    std::fs::write(&path, &tampered).expect("write");
    let error = signature_error(Bundle::load_signed(&path, &sig, &public(&signer)));
    assert_eq!(error, SignatureError::Mismatch);
    let message = BundleError::Signature {
        archive: path.clone(),
        error,
    }
    .to_string();
    assert!(message.contains("rules.rsb") && message.contains("nothing in the archive was read"));
}

#[test]
fn wrong_key_is_rejected_and_nothing_is_parsed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trusted = key(7);
    let attacker = key(9);

    // Content that parsing would reject (Rejected) ...
    let bad = tar(&[
        ("whoami.yml", GOOD.as_bytes()),
        ("session.yml", BAD.as_bytes()),
    ]);
    let (path, sig) = write_signed(dir.path(), &bad, &trusted);
    assert!(
        matches!(
            Bundle::load_signed(&path, &sig, &public(&trusted)),
            Err(BundleError::Rejected { ref rejections, .. })
                if matches!(rejections[0].reason, Reason::FieldNotProvided { .. })
        ),
        "with the right key the bad rule is parsed and rejected"
    );
    // ... signed with another key gives a signature error instead: the YAML
    // was never reached.
    let (path, sig) = write_signed(dir.path(), &bad, &attacker);
    assert_eq!(
        signature_error(Bundle::load_signed(&path, &sig, &public(&trusted))),
        SignatureError::Mismatch
    );

    // Bytes that are not even tar: with the right key unpacking fails
    // (Malformed), with the wrong key it is never attempted.
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let (path, sig) = write_signed(dir.path(), &garbage, &trusted);
    assert!(matches!(
        Bundle::load_signed(&path, &sig, &public(&trusted)),
        Err(BundleError::Archive {
            error: ArchiveError::Malformed(_),
            ..
        })
    ));
    let (path, sig) = write_signed(dir.path(), &garbage, &attacker);
    assert_eq!(
        signature_error(Bundle::load_signed(&path, &sig, &public(&trusted))),
        SignatureError::Mismatch
    );
}

#[test]
fn truncated_or_malformed_signature_and_key_are_typed_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = key(7);
    let archive = tar(&[("whoami.yml", GOOD.as_bytes())]);
    let (path, sig) = write_signed(dir.path(), &archive, &signer);
    let full = signer.sign(&archive).to_bytes();
    for len in [0, 1, 32, 63, 65] {
        let mut bytes = full.to_vec();
        bytes.resize(len, 0);
        std::fs::write(&sig, &bytes).expect("write");
        assert!(
            matches!(
                signature_error(Bundle::load_signed(&path, &sig, &public(&signer))),
                SignatureError::Encoding(_)
            ),
            "{len}-byte signature"
        );
    }
    // A signature file of several kilobytes is refused unread.
    std::fs::write(&sig, vec![b'0'; 5000]).expect("write");
    assert!(matches!(
        signature_error(Bundle::load_signed(&path, &sig, &public(&signer))),
        SignatureError::Encoding(_)
    ));
    // Keys: wrong length, not hex.
    assert!(PublicKey::parse(&[1u8; 31]).is_err());
    assert!(PublicKey::parse(&[b'z'; 64]).is_err());
    let key_file = dir.path().join("key.pub");
    std::fs::write(&key_file, b"-----BEGIN PUBLIC KEY-----").expect("write");
    let error = PublicKey::from_file(&key_file).expect_err("not a raw key");
    assert!(error.to_string().contains("key.pub"), "{error}");
}

#[test]
fn oversized_archives_and_entries_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = key(7);
    let archive = tar(&[("whoami.yml", GOOD.as_bytes())]);
    let (path, sig) = write_signed(dir.path(), &archive, &signer);
    let load = |limits: &ArchiveLimits| {
        Bundle::load_signed_with(&path, &sig, &public(&signer), LoadPolicy::Strict, limits)
    };

    // Larger than the archive limit: refused before the signature (which is
    // valid) is even checked.
    let small = ArchiveLimits {
        max_archive_bytes: archive.len() as u64 - 1,
        ..ArchiveLimits::default()
    };
    assert!(matches!(
        load(&small),
        Err(BundleError::Archive { error: ArchiveError::TooLarge { size, .. }, .. })
            if size == archive.len() as u64
    ));
    // One file over the per-file limit.
    let tight = ArchiveLimits {
        max_file_bytes: 16,
        ..ArchiveLimits::default()
    };
    assert!(matches!(
        load(&tight),
        Err(BundleError::Archive { error: ArchiveError::FileTooLarge { ref path, .. }, .. })
            if path == Path::new("whoami.yml")
    ));
    // Too many entries.
    let many: Vec<(String, &[u8])> = (0..20)
        .map(|i| (format!("r{i}.txt"), b"x" as &[u8]))
        .collect();
    let many: Vec<(&str, &[u8])> = many.iter().map(|(p, b)| (p.as_str(), *b)).collect();
    let (path2, sig2) = write_signed(dir.path(), &tar(&many), &signer);
    assert!(matches!(
        Bundle::load_signed_with(
            &path2,
            &sig2,
            &public(&signer),
            LoadPolicy::Strict,
            &ArchiveLimits {
                max_entries: 10,
                ..ArchiveLimits::default()
            }
        ),
        Err(BundleError::Archive {
            error: ArchiveError::TooManyEntries { limit: 10 },
            ..
        })
    ));
}

#[test]
fn links_and_escaping_paths_are_refused_even_when_signed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = key(7);

    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_entry_type(tar::EntryType::Symlink);
    builder
        .append_link(&mut header, "link.yml", "/etc/passwd")
        .expect("append");
    let link = builder.into_inner().expect("finish");
    let (path, sig) = write_signed(dir.path(), &link, &signer);
    assert!(matches!(
        Bundle::load_signed(&path, &sig, &public(&signer)),
        Err(BundleError::Archive {
            error: ArchiveError::UnsupportedEntry { .. },
            ..
        })
    ));

    // `tar::Builder` refuses `..`, so write the name into the header directly.
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..13].copy_from_slice(b"../escape.yml");
    header.set_size(GOOD.len() as u64);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut escaping = header.as_bytes().to_vec();
    escaping.extend_from_slice(GOOD.as_bytes());
    escaping.resize(escaping.len().next_multiple_of(512) + 1024, 0);
    let (path, sig) = write_signed(dir.path(), &escaping, &signer);
    assert!(matches!(
        Bundle::load_signed(&path, &sig, &public(&signer)),
        Err(BundleError::Archive {
            error: ArchiveError::UnsafePath { .. },
            ..
        })
    ));
}

#[test]
fn hostile_signed_archives_are_errors_not_panics() {
    let signer = key(7);
    let valid = tar(&[("a.yml", GOOD.as_bytes()), ("b/c.yml", BAD.as_bytes())]);
    let limits = ArchiveLimits::default();
    let mut cases: Vec<Vec<u8>> = (0..valid.len())
        .step_by(37)
        .map(|n| valid[..n].to_vec())
        .collect();
    // Corrupt header bytes (sizes, checksums, type flags) one at a time.
    for at in (0..512).step_by(3) {
        let mut bytes = valid.clone();
        bytes[at] ^= 0x5a;
        cases.push(bytes);
    }
    for bytes in cases {
        let signature = signer.sign(&bytes).to_bytes();
        // Any outcome but a panic is acceptable; the result is used so the
        // call cannot be optimized away.
        let result = Bundle::load_signed_bytes(
            Path::new("hostile.rsb"),
            bytes,
            signature.to_vec(),
            &public(&signer),
            LoadPolicy::Lenient,
            &limits,
        );
        if let Err(error) = result {
            assert!(!error.to_string().is_empty());
        }
    }
}

#[test]
fn an_archive_naming_one_file_twice_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = key(7);
    // Both spellings name proc/whoami.yml; tar keeps both entries.
    let archive = tar(&[
        ("./proc/whoami.yml", GOOD.as_bytes()),
        ("proc/whoami.yml", GOOD.as_bytes()),
    ]);
    let (path, sig) = write_signed(dir.path(), &archive, &signer);
    match Bundle::load_signed(&path, &sig, &public(&signer)) {
        Err(BundleError::Archive {
            error: ArchiveError::Duplicate { path },
            ..
        }) => assert_eq!(path, Path::new("proc/whoami.yml")),
        other => panic!("expected a duplicate entry error, got {other:?}"),
    }
}
