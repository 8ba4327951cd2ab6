//! A real rsyslog for the fleet-delivery tests: throwaway certificates
//! (openssl CLI), a private configuration on 127.0.0.1 only (RELP/TLS,
//! syslog/TLS, plaintext RELP), its own pid file and work directory, and
//! what it receives written to a file as the messages' MSG, one per line.
//!
//! Installed by `cargo xtask test` (xtask/src/setup.rs); these helpers
//! install nothing and fail, saying so, where it is missing.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// Fails the test unless rsyslog and its RELP and TLS modules are here.
pub fn require_rsyslog() {
    for (file, package) in [
        (RSYSLOGD, "rsyslog"),
        (
            "/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so",
            "rsyslog-relp",
        ),
        (
            "/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so",
            "rsyslog-openssl",
        ),
    ] {
        assert!(
            Path::new(file).exists(),
            "{file} is missing: these tests run against a real rsyslog; run `cargo xtask test`, which installs the Debian package {package}"
        );
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (the certificates are generated with the openssl CLI)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 signed by
/// it, plus a second CA that signed nothing (the "wrong CA").
pub struct Certs {
    pub ca: PathBuf,
    pub wrong_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// The agent's certificate: imrelp with TLS requires one (mutual TLS).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Certs {
    /// `--tls-cert C --tls-key K`.
    pub fn client_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.client_cert.display().to_string(),
            "--tls-key".into(),
            self.client_key.display().to_string(),
        ]
    }
}

/// openssl's options for a new P-256 key, unencrypted.
const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// `NAME.key` and `NAME.pem`: a certificate for `subject` signed by the
/// test CA (`ca.pem`), with the X.509 extensions `extensions`.
fn signed_by_ca(dir: &Path, name: &str, subject: &str, extensions: &str) {
    let (key, csr, pem, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&ext), extensions).expect("write ext");
    let mut args = vec!["req"];
    args.extend(EC_KEY);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
    openssl(dir, &args);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

pub fn certs(dir: &Path) -> Certs {
    for (name, subject) in [
        ("ca", "/CN=ringside test CA"),
        ("wrong-ca", "/CN=some other CA"),
    ] {
        let key = format!("{name}.key");
        let pem = format!("{name}.pem");
        let mut args = vec!["req", "-x509"];
        args.extend(EC_KEY);
        args.extend([
            "-keyout", &key, "-out", &pem, "-days", "2", "-subj", subject,
        ]);
        openssl(dir, &args);
    }
    signed_by_ca(
        dir,
        "server",
        "/CN=localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    );
    signed_by_ca(
        dir,
        "client",
        "/CN=ringside-agent",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
    Certs {
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
        ca: dir.join("ca.pem"),
        wrong_ca: dir.join("wrong-ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released for rsyslog).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One rsyslog, restartable on the same ports and output file.
pub struct Rsyslog {
    pub dir: PathBuf,
    pub relp_port: u16,
    pub syslog_port: u16,
    pub plain_relp_port: u16,
    pub output: PathBuf,
    conf: PathBuf,
    pid_file: PathBuf,
    child: Option<Child>,
    pub starts: u32,
}

impl Rsyslog {
    /// Writes the configuration in `dir` (certificates from `certs`) and
    /// starts rsyslog.
    pub fn start(dir: &Path, certs: &Certs) -> Rsyslog {
        require_rsyslog();
        let work = dir.join("rsyslog-work");
        std::fs::create_dir_all(&work).expect("work dir");
        let (relp_port, syslog_port, plain_relp_port) = (free_port(), free_port(), free_port());
        let output = dir.join("received.log");
        let conf = dir.join("rsyslog.conf");
        let (ca, cert, key) = (
            certs.ca.display(),
            certs.server_cert.display(),
            certs.server_key.display(),
        );
        // A direct main queue: rsyslog acknowledges a RELP message only
        // after omfile wrote it, so a SIGKILL cannot lose an acknowledged
        // message in an in-memory queue (the default queue would).
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{work}" maxMessageSize="64k"
  defaultNetstreamDriver="ossl"
  defaultNetstreamDriverCAFile="{ca}"
  defaultNetstreamDriverCertFile="{cert}"
  defaultNetstreamDriverKeyFile="{key}")
main_queue(queue.type="Direct")
module(load="imrelp")
module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imrelp" address="127.0.0.1" port="{relp_port}" tls="on"
  tls.caCert="{ca}" tls.myCert="{cert}" tls.myPrivKey="{key}" tls.authMode="certvalid")
input(type="imtcp" address="127.0.0.1" port="{syslog_port}")
input(type="imrelp" address="127.0.0.1" port="{plain_relp_port}")
template(name="msgonly" type="string" string="%msg%\n")
action(type="omfile" file="{out}" template="msgonly")
"#,
                work = work.display(),
                out = output.display(),
            ),
        )
        .expect("write rsyslog.conf");
        let mut rsyslog = Rsyslog {
            dir: dir.to_owned(),
            relp_port,
            syslog_port,
            plain_relp_port,
            output,
            pid_file: dir.join("rsyslog.pid"),
            conf,
            child: None,
            starts: 0,
        };
        rsyslog.restart();
        rsyslog
    }

    /// Starts rsyslog (again) and waits until its ports accept.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "rsyslog already running");
        let _ = std::fs::remove_file(&self.pid_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("rsyslogd.stderr"))
            .expect("rsyslog log");
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(&self.conf)
            .arg("-i")
            .arg(&self.pid_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        self.starts += 1;
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in [self.relp_port, self.syslog_port, self.plain_relp_port] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "rsyslog did not listen on 127.0.0.1:{port}; its log: {}",
                    std::fs::read_to_string(self.dir.join("rsyslogd.stderr")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// SIGKILL, no chance to flush or close anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The Seq of every JSON line received, with how often each came, and
    /// the other received events (no Seq) as parsed JSON.
    pub fn received(&self) -> Received {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let mut received = Received::default();
        for line in text.lines() {
            let value: serde_json::Value = match serde_json::from_str(line.trim_start()) {
                Ok(value) => value,
                // rsyslog killed in the middle of writing a line leaves its
                // start in the file, and the next line written after the
                // restart follows it directly: one torn fragment, then a
                // whole event.
                Err(e) => match whole_after_torn(line) {
                    Some(value) => {
                        received.torn += 1;
                        value
                    }
                    None => panic!("rsyslog received a line that is not JSON ({e}): {line}"),
                },
            };
            match value["Seq"].as_u64() {
                Some(seq) => *received.seqs.entry(seq).or_default() += 1,
                None => received.other.push(value),
            }
        }
        received
    }

    /// Waits until the output file stops growing (rsyslog wrote all).
    pub fn settle(&self) {
        let mut last = u64::MAX;
        loop {
            let len = std::fs::metadata(&self.output)
                .map(|m| m.len())
                .unwrap_or(0);
            if len == last {
                return;
            }
            last = len;
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What rsyslog wrote.
#[derive(Debug, Default)]
pub struct Received {
    pub seqs: BTreeMap<u64, u32>,
    pub other: Vec<serde_json::Value>,
    /// Lines that began with a fragment a killed rsyslog left half
    /// written: at most one per kill.
    pub torn: u32,
}

/// The whole event after a torn fragment in `line`: the last `{"EventID"`
/// that starts a line of JSON on its own.
pub fn whole_after_torn(line: &str) -> Option<serde_json::Value> {
    let at = line.rfind("{\"EventID\"").filter(|&at| at > 0)?;
    serde_json::from_str(&line[at..]).ok()
}

impl Received {
    /// Messages received more than once, counted beyond the first.
    pub fn duplicates(&self) -> u64 {
        self.seqs
            .values()
            .map(|&n| u64::from(n.saturating_sub(1)))
            .sum()
    }
}
