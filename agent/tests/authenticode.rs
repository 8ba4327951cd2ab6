//! The portable Authenticode check on images signed in the test: the PE
//! fixtures of `tests/data/pe` (unsigned linker output) are signed here by
//! `osslsigncode` (an independent signer, a Debian package that `cargo
//! xtask` installs) with a certificate `openssl` makes for the run. No key,
//! certificate or signed file is committed.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use ringside_agent::enrich::authenticode::{Flaw, Status, Verdict, verify};
use ringside_agent::enrich::pe::Image;
use ringside_agent::synth::BatchBuilder;
use support::{agent, at, lines, replay_of};

const PE32: &[u8] = include_bytes!("data/pe/fixture32.exe");
const PE64: &[u8] = include_bytes!("data/pe/fixture64.exe");

/// The subject CN of the test certificate: what `Signature` must show.
const SIGNER: &str = "Ringside Test Signer";

fn tool(name: &str) -> Command {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|dir| dir.join(name).is_file());
    assert!(
        found,
        "{name} is not installed: `cargo xtask test` installs it (Debian package {name})"
    );
    Command::new(name)
}

fn run(command: &mut Command) {
    let output = command.output().expect("tool starts");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A key and self-signed certificate (RSA 2048) in `dir` whose subject's
/// common name is `cn`.
fn certificate(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let (key, cert) = (dir.join(format!("{cn}.key")), dir.join(format!("{cn}.pem")));
    run(tool("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-subj")
        .arg(format!("/O=Ringside Test/CN={cn}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    (key, cert)
}

/// `unsigned` signed by osslsigncode with digest `hash` (sha1, sha256, …).
fn sign(dir: &Path, unsigned: &[u8], hash: &str) -> Vec<u8> {
    sign_as(dir, unsigned, hash, SIGNER)
}

/// `unsigned` signed with a certificate whose subject CN is `cn`.
fn sign_as(dir: &Path, unsigned: &[u8], hash: &str, cn: &str) -> Vec<u8> {
    let (key, cert) = certificate(dir, cn);
    let input = dir.join("in.exe");
    let output = dir.join(format!("signed-{hash}-{cn}.exe"));
    std::fs::write(&input, unsigned).expect("write the fixture");
    run(tool("osslsigncode")
        .args(["sign", "-h", hash, "-n", "ringside fixture"])
        .arg("-certs")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .arg("-in")
        .arg(&input)
        .arg("-out")
        .arg(&output));
    std::fs::read(&output).expect("signed file")
}

/// Where a signed image's attribute certificate table lies in the file.
fn certificate_table(image: &Image<'_>) -> std::ops::Range<usize> {
    authenticode::PeTrait::certificate_table_range(image)
        .expect("offsets")
        .expect("a certificate table")
}

fn check(bytes: &[u8]) -> Verdict {
    verify(&Image::parse(bytes).expect("a PE"))
}

#[test]
fn unsigned_fixtures_are_unsigned() {
    for bytes in [PE32, PE64] {
        let verdict = check(bytes);
        assert_eq!(verdict.status, Status::Unsigned);
        assert_eq!(verdict.signer, None);
        assert_eq!(verdict.sysmon(), ("false", "Unavailable"));
    }
}

#[test]
fn signed_fixtures_are_intact_and_name_their_signer() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (unsigned, hash) in [(PE64, "sha256"), (PE32, "sha1"), (PE64, "sha512")] {
        let signed = sign(dir.path(), unsigned, hash);
        let verdict = check(&signed);
        assert_eq!(verdict.status, Status::Intact, "{hash}");
        assert_eq!(verdict.signer.as_deref(), Some(SIGNER), "{hash}");
        // Off Windows the chain is not checked: never "Valid".
        assert_eq!(verdict.sysmon(), ("true", "Unverified"));
    }
}

#[test]
fn a_changed_byte_breaks_the_signature() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signed = sign(dir.path(), PE64, "sha256");
    let image = Image::parse(&signed).expect("a PE");
    let table = certificate_table(&image);

    // A byte of the image (in the last section, inside the digest).
    let mut patched = signed.clone();
    let at = table.start - 16;
    patched[at] ^= 0x55;
    let verdict = check(&patched);
    assert_eq!(verdict.status, Status::Invalid(Flaw::DigestMismatch));
    assert_eq!(verdict.signer, None);
    assert_eq!(verdict.sysmon(), ("false", "Invalid"));

    // The signer's signature value: the last bytes of the PKCS#7 blob
    // are the end of the RSA signature (osslsigncode adds no unsigned
    // attributes without a timestamp server). The blob (after the 8-byte
    // WIN_CERTIFICATE header) is a SEQUENCE with a two-byte length.
    let der = &signed[table.start + 8..];
    assert_eq!(der[..2], [0x30, 0x82]);
    let end = table.start + 8 + 4 + usize::from(u16::from_be_bytes([der[2], der[3]]));
    let mut patched = signed.clone();
    patched[end - 1] ^= 0x01;
    let verdict = check(&patched);
    assert_eq!(verdict.status, Status::Invalid(Flaw::BadSignature));
    // The certificate was found before the signature failed.
    assert_eq!(verdict.signer.as_deref(), Some(SIGNER));

    // The signed content less its digest: the SpcPeImageData type OID
    // (1.3.6.1.4.1.311.2.1.15) inside the SpcIndirectDataContent. The
    // file's digest still matches; the signed attributes' message digest
    // (over the content) no longer does.
    let oid = [
        0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x0f,
    ];
    let at = table.start
        + signed[table.start..]
            .windows(oid.len())
            .position(|w| w == oid)
            .expect("SpcPeImageData's OID");
    let mut patched = signed.clone();
    patched[at + oid.len() - 1] = 0x0e;
    let verdict = check(&patched);
    assert_eq!(verdict.status, Status::Invalid(Flaw::MessageDigestMismatch));

    // A checksum change is outside the digest: still intact.
    let mut patched = signed.clone();
    let offsets = authenticode::PeTrait::offsets(&image).expect("offsets");
    patched[offsets.check_sum] ^= 0xff;
    assert_eq!(check(&patched).status, Status::Intact);
}

#[test]
fn a_truncated_signature_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signed = sign(dir.path(), PE32, "sha256");
    let table = certificate_table(&Image::parse(&signed).expect("a PE"));
    // Cut the file inside the certificate table: the directory now points
    // past the end.
    let cut = &signed[..table.start + 100];
    let verdict = check(cut);
    assert!(
        matches!(verdict.status, Status::Invalid(Flaw::CertificateTable(_))),
        "{verdict:?}"
    );
    // Keep the length, but shorten the PKCS#7 blob's own length field:
    // the DER inside is cut short.
    let mut short = signed.clone();
    let der_len = u32::from_le_bytes(signed[table.start..table.start + 4].try_into().unwrap());
    short[table.start..table.start + 4].copy_from_slice(&(der_len - 200).to_le_bytes());
    let verdict = check(&short);
    assert!(matches!(verdict.status, Status::Invalid(_)), "{verdict:?}");
    assert_eq!(verdict.sysmon().0, "false");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random bytes placed as the certificate table of a real PE: a typed
    /// verdict, never a panic, and never intact.
    #[test]
    fn random_certificate_tables_never_panic(
        revision in prop_oneof![Just(0x0200u16), any::<u16>()],
        kind in prop_oneof![Just(0x0002u16), any::<u16>()],
        body in proptest::collection::vec(any::<u8>(), 0..600),
        der_prefix in any::<bool>(),
    ) {
        let mut body = body;
        if der_prefix && body.len() > 4 {
            // A plausible start: SEQUENCE, long length, then the
            // signedData OID's tag.
            body[..4].copy_from_slice(&[0x30, 0x82, 0x06, 0x06]);
        }
        let mut file = PE64.to_vec();
        let start = file.len();
        let len = 8 + body.len();
        file.extend_from_slice(&(len as u32).to_le_bytes());
        file.extend_from_slice(&revision.to_le_bytes());
        file.extend_from_slice(&kind.to_le_bytes());
        file.extend_from_slice(&body);
        file.resize(start + len.div_ceil(8) * 8, 0);
        let table = file.len() - start;
        set_security_directory(&mut file, start, table);
        let verdict = check(&file);
        prop_assert!(verdict.status != Status::Intact);
    }

    /// Random bytes as a whole file: a PE or not, never a panic.
    #[test]
    fn random_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Some(image) = Image::parse(&bytes) {
            let _ = verify(&image);
        }
    }
}

/// Points the PE32+ `file`'s security directory at `start..start + len`.
fn set_security_directory(file: &mut [u8], start: usize, len: usize) {
    let pe = u32::from_le_bytes(file[0x3c..0x40].try_into().unwrap()) as usize;
    // Signature (4), file header (20), PE32+ optional header fields (112),
    // then data directory 4 (security), 8 bytes each.
    let entry = pe + 4 + 20 + 112 + 4 * 8;
    file[entry..entry + 4].copy_from_slice(&(start as u32).to_le_bytes());
    file[entry + 4..entry + 8].copy_from_slice(&(len as u32).to_le_bytes());
}

/// End to end, off Windows: image loads of files under `--files-root`
/// carry `Signed`, `Signature` and `SignatureStatus`, and SigmaHQ's rule
/// for side-loaded DLLs that do not exist on Windows (its filter: `Signed`
/// true, `SignatureStatus` Valid, `Signature` "Microsoft Windows") fires
/// unless the filter holds. A self-made certificate named "Microsoft
/// Windows" passes the filter only where Code Integrity validated the image
/// (a signing level of 2 or more); the portable check alone never says
/// `Valid`, so the same file with no level is reported.
#[test]
fn image_loads_carry_the_signature_and_the_sigmahq_signature_rule_uses_it() {
    if cfg!(windows) {
        return; // --files-root maps DOS paths only off Windows.
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let system32 = dir.path().join("root/C/Windows/System32");
    std::fs::create_dir_all(&system32).expect("mkdir");
    let signed = sign(dir.path(), PE64, "sha256");
    let microsoft = sign_as(dir.path(), PE64, "sha256", "Microsoft Windows");
    for (name, bytes) in [
        ("oci.dll", &signed[..]),
        ("TSMSISrv.dll", &microsoft[..]),
        ("TSVIPSrv.dll", &microsoft[..]),
        ("WLBSCTRL.dll", PE64),
    ] {
        std::fs::write(system32.join(name), bytes).expect("write");
    }
    let mut b = BatchBuilder::new();
    let dll = |name: &str| format!(r"\??\C:\Windows\System32\{name}");
    // (file, SE_SIGNING_LEVEL_*): unchecked, Windows, unchecked, unsigned.
    b.image_load(at(10, 1), &dll("oci.dll"), 0);
    b.image_load(at(10, 2), &dll("TSMSISrv.dll"), 12);
    b.image_load(at(10, 3), &dll("TSVIPSrv.dll"), 0);
    b.image_load(at(10, 4), &dll("WLBSCTRL.dll"), 1);
    b.driver_load(at(4, 5), &dll("oci.dll"), 0);
    let replay = dir.path().join("loads.replay");
    std::fs::write(&replay, replay_of(&[b.take()])).expect("write");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../../shared/data/sigma/rules/windows/image_load/image_load_side_load_non_existent_dlls.yml",
        ),
        rules.join("non_existent_dlls.yml"),
    )
    .expect("SigmaHQ snapshot is there");
    let (code, stdout, stderr) = agent(&[
        "replay",
        replay.to_str().expect("UTF-8"),
        "--files-root",
        dir.path().join("root").to_str().expect("UTF-8"),
        "--rules",
        rules.to_str().expect("UTF-8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("(0 rejected)"), "{stderr}");
    let out = lines(&stdout);
    let events: Vec<&serde_json::Value> = out
        .iter()
        .filter(|l| l.get("Alert").is_none() && (l["EventID"] == 7 || l["EventID"] == 6))
        .collect();
    let fields: Vec<(u64, [&str; 3])> = events
        .iter()
        .map(|e| {
            let d = &e["EventData"];
            let text = |k: &str| d[k].as_str().unwrap_or("?");
            (
                e["EventID"].as_u64().expect("id"),
                [text("Signed"), text("Signature"), text("SignatureStatus")],
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            (7, ["true", SIGNER, "Unverified"]),
            (7, ["true", "Microsoft Windows", "Valid"]),
            (7, ["true", "Microsoft Windows", "Unverified"]),
            (7, ["false", "-", "Unavailable"]),
            (6, ["true", SIGNER, "Unverified"]),
        ],
        "{stdout}"
    );
    // The rule fires after every 7 but the one its filter excludes.
    let alerted: Vec<&str> = out
        .iter()
        .filter(|l| l.get("Alert").is_some())
        .map(|l| l["EventData"]["ImageLoaded"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        alerted,
        [
            r"C:\Windows\System32\oci.dll",
            r"C:\Windows\System32\TSVIPSrv.dll",
            r"C:\Windows\System32\WLBSCTRL.dll",
        ],
        "{stdout}"
    );
}
