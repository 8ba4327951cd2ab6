//! `cargo xtask package [--sign]`: builds ringside.sys (profile `driver`,
//! target x86_64-pc-windows-msvc), runs the binary gate on it, and lays out
//! `target/package/` with ringside.sys, ringside.pdb and ringside.inf.
//!
//! `--sign` test-signs the image with `osslsigncode` and a throwaway
//! certificate generated with `openssl` under target/package/cert/ (never
//! committed), writes ringside.cer for the test machine's trusted stores,
//! and re-runs the gate on the signed image. The catalog (.cat) is made by
//! inf2cat on a Windows host (Makefile.toml); no Linux tool creates one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{cargo, root, run};
use crate::gate;

const TARGET: &str = "x86_64-pc-windows-msvc";
const PROFILE: &str = "driver";

/// Builds, gates and lays out the package; returns the package directory.
pub fn run_package(args: &[String]) -> Result<PathBuf, String> {
    let mut sign = false;
    for arg in args {
        match arg.as_str() {
            "--sign" => sign = true,
            other => {
                return Err(format!(
                    "package: unknown option `{other}` (expected --sign)"
                ));
            }
        }
    }
    run(cargo().args([
        "build",
        "--locked",
        "-p",
        "ringside-driver",
        "--bin",
        "ringside",
        "--target",
        TARGET,
        "--profile",
        PROFILE,
    ]))?;
    let root = root();
    let built = root.join("target").join(TARGET).join(PROFILE);
    let out = root.join("target").join("package");
    fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;

    let sys = out.join("ringside.sys");
    copy(&built.join("ringside.exe"), &sys)?;
    copy(&built.join("ringside.pdb"), &out.join("ringside.pdb"))?;
    let inf_source = root.join("inf").join("ringside.inf");
    copy(&inf_source, &out.join("ringside.inf"))?;

    gate_file(&sys)?;
    check_pdb_matches(&sys, &out.join("ringside.pdb"))?;
    // The INF we ship, against the files we ship (complements infverif on Windows).
    let inf_path = out.join("ringside.inf");
    let inf_text = fs::read_to_string(&inf_path)
        .map_err(|e| format!("reading {}: {e}", inf_path.display()))?;
    let inf = crate::inf_check::check(&inf_text, &out)?;
    println!(
        "inf: {} passed: service {}, binary {}, altitude {}, instance \"{}\"",
        inf_path.display(),
        inf.service_name,
        inf.binary,
        inf.altitude,
        inf.instance_name
    );

    // A previous --sign run's certificate must not pass for this image's.
    if !sign {
        for stale in ["ringside.cer", "ringside.cat"] {
            let _ = fs::remove_file(out.join(stale));
        }
    }
    if sign {
        sign_image(&out, &sys)?;
        gate_file(&sys)?;
    }

    println!("\npackage: {}", out.display());
    let mut names: Vec<_> = fs::read_dir(&out)
        .map_err(|e| format!("listing {}: {e}", out.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .collect();
    names.sort_by_key(|e| e.file_name());
    for entry in names {
        let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
        println!(
            "  {:<16} {len:>9} bytes",
            entry.file_name().to_string_lossy()
        );
    }
    Ok(out)
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))
}

/// Runs the gate on `path` and prints its report, or fails naming every problem.
pub fn gate_file(path: &Path) -> Result<(), String> {
    let bytes = fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    match gate::check(&bytes) {
        Ok(report) => {
            println!(
                "gate: {} passed: PE32+ AMD64 NATIVE, FORCE_INTEGRITY|NX|DYNAMIC_BASE, checksum {:#010x}, \
                 sections {:?}, PDB {}, {} imports, no KeBugCheckEx, no abort instruction (ud2, int 29h) in its code",
                path.display(),
                report.checksum,
                report.sections,
                report.pdb_path,
                report.imports.len()
            );
            let mut by_dll: Vec<(String, Vec<String>)> = Vec::new();
            for (dll, function) in report.imports {
                match by_dll.iter_mut().find(|(d, _)| *d == dll) {
                    Some((_, list)) => list.push(function),
                    None => by_dll.push((dll, vec![function])),
                }
            }
            for (dll, functions) in by_dll {
                println!("  {dll}: {}", functions.join(" "));
            }
            Ok(())
        }
        Err(problems) => Err(format!(
            "binary gate failed for {}:\n  - {}",
            path.display(),
            problems.join("\n  - ")
        )),
    }
}

/// The packaged PDB must be the one the image's CodeView record names, or
/// WinDbg will not load its symbols.
fn check_pdb_matches(sys: &Path, pdb: &Path) -> Result<(), String> {
    let image = fs::read(sys).map_err(|e| format!("reading {}: {e}", sys.display()))?;
    let pdb_bytes = fs::read(pdb).map_err(|e| format!("reading {}: {e}", pdb.display()))?;
    let want = gate::codeview_guid(&image).ok_or("the image has no CodeView GUID")?;
    let got = gate::pdb_guid(&pdb_bytes).map_err(|e| format!("{}: {e}", pdb.display()))?;
    if want != got {
        return Err(format!(
            "{} does not match {} (GUID {:02x?} vs {:02x?}): rebuild",
            pdb.display(),
            sys.display(),
            got,
            want
        ));
    }
    println!("pdb: {} matches the image's CodeView GUID", pdb.display());
    Ok(())
}

fn sign_image(out: &Path, sys: &Path) -> Result<(), String> {
    let cert = test_sign(&out.join("cert"), sys)?;
    run(Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .arg("-out")
        .arg(out.join("ringside.cer")))?;
    Ok(())
}

/// The subject of the throwaway test-signing certificate.
pub const TEST_SIGNER: &str = "ringside test signing (not for production)";

/// Signs `image` in place with osslsigncode and the throwaway certificate
/// in `cert_dir` (made there with openssl on first use, never committed),
/// then has osslsigncode verify it against that certificate. Returns the
/// certificate's PEM file.
pub fn test_sign(cert_dir: &Path, image: &Path) -> Result<PathBuf, String> {
    fs::create_dir_all(cert_dir).map_err(|e| format!("creating {}: {e}", cert_dir.display()))?;
    let key = cert_dir.join("ringside-test.key.pem");
    let cert = cert_dir.join("ringside-test.cert.pem");
    if !key.exists() || !cert.exists() {
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:3072",
                "-sha256",
                "-days",
                "365",
                "-nodes",
                "-subj",
                &format!("/CN={TEST_SIGNER}"),
                "-addext",
                "extendedKeyUsage=codeSigning",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert))?;
    }
    let signed = image.with_extension("signed");
    let _ = fs::remove_file(&signed);
    run(Command::new("osslsigncode")
        .args(["sign", "-h", "sha256", "-n", "ringside", "-certs"])
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .arg("-in")
        .arg(image)
        .arg("-out")
        .arg(&signed))?;
    fs::rename(&signed, image).map_err(|e| format!("replacing {}: {e}", image.display()))?;
    run(Command::new("osslsigncode")
        .arg("verify")
        .arg("-CAfile")
        .arg(&cert)
        .arg("-in")
        .arg(image))?;
    Ok(cert)
}
