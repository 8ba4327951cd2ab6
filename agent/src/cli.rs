//! The command line: `replay`, `stats`, `run`, `service`, `content`, `config`.
//!
//! Exit codes: 0 success; 1 the agent failed (e.g. the output could not be
//! written) or the driver's counters do not balance; 2 bad input (an
//! unreadable or malformed file — reported with file and byte offset — or a
//! command this platform cannot run).

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use ringside_content::{
    BundleError, BundleWatcher, CrashGuard, LastKnownGood, LoadPolicy, PublicKey, RulesLocation,
    Validator, WatchHandle,
};
use ringside_wire::EventKind;

use crate::crosscheck::cross_check;
use crate::detect::{Budget, Detector, Notice};
use crate::enrich::EnrichConfig;
use crate::enrich::hash::HashSet;
use crate::pipeline::{Config, Counters, Depth, Pipeline};
use crate::sink::network::{NetworkOptions, NetworkSink, Target};
use crate::sink::tls::TlsOptions;
use crate::sink::{Discard, Fanout, JsonLines, RotatingFile, Sink};
use crate::source::replay::ReplayReader;
use crate::stats::{StatsCheck, Verdict};

/// ringside's user-mode agent.
#[derive(Debug, Parser)]
#[command(name = "ringside-agent", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode a replay file and print its events as Sysmon-style JSON lines.
    Replay(ReplayArgs),
    /// Check a replay file's driver counters (produced == delivered + dropped),
    /// sequence gaps, lost events and decode errors.
    Stats {
        /// The replay file.
        file: PathBuf,
    },
    /// Run the live sensor: read events from the ringside driver (Windows).
    Run(RunArgs),
    /// Install, uninstall or run the agent as a Windows service.
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// Check Sigma rules against the sensor's schema, or run regression samples.
    Content {
        #[command(subcommand)]
        action: ContentAction,
    },
    /// Check a Sysmon XML configuration, or test it against events.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum ConfigAction {
    /// Parse FILE: one `path:line:column: <Element> ignored|rejected: reason`
    /// line per element not applied, then `applied N, ignored M (by reason
    /// …), rejected K (…)`. Exits 2 if anything was rejected (the
    /// configuration would not be used).
    Check {
        /// A Sysmon XML configuration (schema 4.x).
        file: PathBuf,
        /// After the summary, the same counts per Sysmon event type.
        #[arg(long)]
        by_type: bool,
    },
    /// Decide each event in EVENTS with FILE: one line per event, `logged`
    /// or `dropped`, the deciding rule and its RuleName, then a summary.
    Test {
        /// A Sysmon XML configuration (schema 4.x).
        file: PathBuf,
        /// Sysmon-shaped JSON events (the agent's JSON lines, or Sysmon
        /// events as JSON): a file, or a directory of `*.json`/`*.jsonl`.
        events: PathBuf,
    },
}

/// `--config`: a Sysmon XML configuration deciding which events are written.
#[derive(Debug, Clone, Default, Args)]
pub struct SysmonConfigArgs {
    /// Write only the events this Sysmon XML configuration logs (Sysmon's
    /// semantics; its RuleName goes into each event, its HashAlgorithms
    /// choose the hashes). The driver is not asked for kinds it can never
    /// log.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// `run` and `service`: check --config for changes every SECS seconds
    /// and swap in a changed one once it fully parsed (0: never).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub config_poll: u64,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ContentAction {
    /// Compile every rule under DIR: one `path:line: reason` line per rejected
    /// rule, then `accepted N, rejected M (by reason …)`. Exits 2 if any rule
    /// was rejected.
    Check {
        /// Directory of Sigma rules (`*.yml`, searched recursively).
        dir: PathBuf,
    },
    /// Run SigmaHQ-style regression samples (folders with `info.yml` and
    /// Sysmon event JSON) through the schema mapping and engine. Exits 1 if a
    /// sample's rule did not fire.
    Test {
        /// Directory of Sigma rules the samples name by id.
        rules: PathBuf,
        /// Directory of regression sample folders.
        regression: PathBuf,
    },
    /// Compile and build `--rules` in this process and exit: 0 if it loads,
    /// 2 if it is rejected. The agent runs this in a separate process,
    /// under memory and CPU limits, before it compiles new content itself.
    #[command(hide = true)]
    Validate(RulesArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    /// Evaluate the Sigma rules in this directory, or in this signed `.rsb`
    /// archive (with --rules-pubkey), and write alerts beside the events.
    #[arg(long, value_name = "DIR|ARCHIVE")]
    pub rules: Option<PathBuf>,
    /// Accept the rules that compile and report the rest, instead of
    /// rejecting the whole bundle when one rule is rejected.
    #[arg(long, requires = "rules")]
    pub lenient_rules: bool,
    /// The ed25519 public key (32 raw bytes or 64 hex digits) a `--rules`
    /// archive must be signed with. Required for archives.
    #[arg(long, value_name = "FILE", requires = "rules")]
    pub rules_pubkey: Option<PathBuf>,
    /// The archive's detached signature (default: ARCHIVE.sig).
    #[arg(long, value_name = "FILE", requires = "rules_pubkey")]
    pub rules_signature: Option<PathBuf>,
    /// Keep the last known good bundle in DIR/last-known-good and start
    /// from it when --rules does not load (default for `run` on Windows:
    /// %ProgramData%\ringside).
    #[arg(long, value_name = "DIR", requires = "rules")]
    pub state_dir: Option<PathBuf>,
    /// Runtime budget of a newly activated bundle: microseconds per event.
    #[arg(long, default_value_t = 2000, value_name = "US")]
    pub rules_budget_us: u64,
    /// Over-budget events tolerated during probation before rolling back.
    #[arg(long, default_value_t = 100, value_name = "K")]
    pub rules_budget_over: u32,
    /// Probation of a newly activated bundle, in evaluated events (0: none).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub rules_probation: u32,
}

impl RulesArgs {
    fn policy(&self) -> LoadPolicy {
        if self.lenient_rules {
            LoadPolicy::Lenient
        } else {
            LoadPolicy::Strict
        }
    }

    fn budget(&self) -> Budget {
        Budget {
            per_event: Duration::from_micros(self.rules_budget_us),
            max_over: self.rules_budget_over,
            window: self.rules_probation,
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum ServiceAction {
    /// Register the service (starts automatically, runs `service run` with
    /// the rules options given here, e.g. `--rules %ProgramData%\ringside\rules`).
    Install(ServiceRunArgs),
    /// Remove the service.
    Uninstall,
    /// Entry point used by the Service Control Manager.
    Run(ServiceRunArgs),
}

/// What the service runs with: the detection content and how often it is
/// checked for a new bundle, and where events go (default
/// `%ProgramData%\ringside\events.jsonl`, alerts beside them).
#[derive(Debug, Clone, Args)]
pub struct ServiceRunArgs {
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub sysmon: SysmonConfigArgs,
    /// Check --rules for changes every SECS seconds and swap in a changed
    /// bundle once it fully compiled (0: never).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub rules_poll: u64,
    /// Write events to this file (rotated at 100 MiB, 5 kept) instead of
    /// %ProgramData%\ringside\events.jsonl.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Also send events to this collector (`relp+tls://HOST:PORT` or
    /// `syslog+tls://HOST:PORT`); repeat for several.
    #[arg(
        long = "output",
        value_name = "relp+tls://HOST:PORT|syslog+tls://HOST:PORT"
    )]
    pub collectors: Vec<String>,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

impl ServiceRunArgs {
    /// These options with every relative path made absolute against `cwd`.
    /// `service install` does this with its own working directory: the
    /// service starts in System32, where a relative `--rules` would name
    /// something else, or nothing.
    pub fn resolved_against(&self, cwd: &Path) -> ServiceRunArgs {
        let absolute = |path: &Option<PathBuf>| path.as_ref().map(|p| cwd.join(p));
        let mut args = self.clone();
        args.rules.rules = absolute(&self.rules.rules);
        args.rules.rules_pubkey = absolute(&self.rules.rules_pubkey);
        args.rules.rules_signature = absolute(&self.rules.rules_signature);
        args.rules.state_dir = absolute(&self.rules.state_dir);
        args.output_file = absolute(&self.output_file);
        args.sysmon.config = absolute(&self.sysmon.config);
        args.delivery = self.delivery.resolved_against(cwd);
        args
    }

    /// The command line `service run` gets from the Service Control
    /// Manager: these options again, so the service runs with what
    /// `service install` was given.
    pub fn run_arguments(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec!["service".into(), "run".into()];
        let rules = &self.rules;
        let mut path = |flag: &str, value: &Option<PathBuf>| {
            if let Some(value) = value {
                args.push(flag.into());
                args.push(value.clone().into_os_string());
            }
        };
        path("--rules", &rules.rules);
        path("--rules-pubkey", &rules.rules_pubkey);
        path("--rules-signature", &rules.rules_signature);
        path("--state-dir", &rules.state_dir);
        path("--output-file", &self.output_file);
        path("--config", &self.sysmon.config);
        if rules.lenient_rules {
            args.push("--lenient-rules".into());
        }
        for (flag, value) in [
            ("--rules-budget-us", rules.rules_budget_us.to_string()),
            ("--rules-budget-over", rules.rules_budget_over.to_string()),
            ("--rules-probation", rules.rules_probation.to_string()),
            ("--rules-poll", self.rules_poll.to_string()),
            ("--config-poll", self.sysmon.config_poll.to_string()),
        ] {
            args.push(flag.into());
            args.push(value.into());
        }
        for collector in &self.collectors {
            args.push("--output".into());
            args.push(collector.into());
        }
        args.extend(self.delivery.arguments());
        args
    }
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The replay file (written by `run --record` or `cargo xtask demo --record`).
    pub file: PathBuf,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub sysmon: SysmonConfigArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub enrich: EnrichArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub sysmon: SysmonConfigArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub enrich: EnrichArgs,
    /// Also write every batch read from the driver to this replay file.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Check --rules for changes every SECS seconds and swap in a changed
    /// bundle once it fully compiled (0: never).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub rules_poll: u64,
}

#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Where events go; repeat for several at once: `stdout`, `file:PATH`
    /// (rotated by size), `relp+tls://HOST:PORT` (RELP over TLS, every
    /// message acknowledged, unacknowledged ones resent after a reconnect)
    /// or `syslog+tls://HOST:PORT` (RFC 5424 over TLS, RFC 5425 framing; no
    /// acknowledgments). Network outputs need --tls-ca.
    #[arg(
        long,
        default_value = "stdout",
        value_name = "stdout|file:PATH|relp+tls://HOST:PORT|syslog+tls://HOST:PORT"
    )]
    pub output: Vec<String>,
    /// Rotate the output file when it would exceed this many bytes.
    #[arg(long, default_value_t = 100 * 1024 * 1024, value_name = "N")]
    pub rotate_bytes: u64,
    /// Rotated files to keep (PATH.1 … PATH.K).
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub keep: usize,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// How network outputs connect and what they keep while the collector is
/// away.
#[derive(Debug, Clone, Default, Args)]
pub struct DeliveryArgs {
    /// PEM CA certificate(s) the collector's certificate must chain to.
    /// Verification cannot be turned off.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate chain, for mutual TLS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The name the collector's certificate must carry (default: HOST).
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Keep messages the collector has not taken in DIR (one subdirectory
    /// per network output), across restarts, bounded by --spool-max-bytes.
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Most bytes each network output's spool holds; past it new messages
    /// are dropped, counted and reported by a 1007 event.
    #[arg(long, default_value_t = 1 << 30, value_name = "N")]
    pub spool_max_bytes: u64,
    /// At exit, keep delivering for up to SECS seconds before leaving the
    /// rest in the spool.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub drain_timeout: u64,
    /// RELP messages sent and not yet acknowledged, at most.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub relp_window: usize,
    /// Bytes of messages each network output queues in memory, in front of
    /// its spool.
    #[arg(long, default_value_t = 16 << 20, value_name = "N")]
    pub queue_bytes: usize,
}

impl DeliveryArgs {
    fn network_options(&self) -> NetworkOptions {
        NetworkOptions {
            tls: TlsOptions {
                ca: self.tls_ca.clone(),
                cert: self.tls_cert.clone(),
                key: self.tls_key.clone(),
                server_name: self.tls_server_name.clone(),
            },
            spool: self
                .spool_dir
                .clone()
                .map(|dir| (dir, self.spool_max_bytes)),
            window: self.relp_window.max(1),
            memory_bytes: self.queue_bytes,
            drain_timeout: Duration::from_secs(self.drain_timeout),
            ..NetworkOptions::default()
        }
    }

    /// These options as command-line arguments (the service's command line).
    pub fn arguments(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        for (flag, value) in [
            ("--tls-ca", &self.tls_ca),
            ("--tls-cert", &self.tls_cert),
            ("--tls-key", &self.tls_key),
            ("--spool-dir", &self.spool_dir),
        ] {
            if let Some(value) = value {
                args.push(flag.into());
                args.push(value.clone().into_os_string());
            }
        }
        if let Some(name) = &self.tls_server_name {
            args.push("--tls-server-name".into());
            args.push(name.into());
        }
        for (flag, value) in [
            ("--spool-max-bytes", self.spool_max_bytes.to_string()),
            ("--drain-timeout", self.drain_timeout.to_string()),
            ("--relp-window", self.relp_window.to_string()),
            ("--queue-bytes", self.queue_bytes.to_string()),
        ] {
            args.push(flag.into());
            args.push(value.into());
        }
        args
    }

    /// These options with relative paths made absolute against `cwd`.
    pub fn resolved_against(&self, cwd: &Path) -> DeliveryArgs {
        let absolute = |path: &Option<PathBuf>| path.as_ref().map(|p| cwd.join(p));
        DeliveryArgs {
            tls_ca: absolute(&self.tls_ca),
            tls_cert: absolute(&self.tls_cert),
            tls_key: absolute(&self.tls_key),
            spool_dir: absolute(&self.spool_dir),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct EnrichArgs {
    /// Do not read image files (no version info, no hashes, no account lookup).
    #[arg(long)]
    pub no_enrich: bool,
    /// Hashes to compute, comma separated: sha1, md5, sha256, imphash, or
    /// `*`. A --config's HashAlgorithms takes precedence.
    #[arg(long, default_value = "md5,sha256,imphash", value_name = "LIST")]
    pub hashes: String,
    /// Off Windows: directory holding the recording machine's drives
    /// (`C:\x.exe` is read from `DIR/C/x.exe`).
    #[arg(long, value_name = "DIR")]
    pub files_root: Option<PathBuf>,
    /// First group of every ProcessGuid, in hex (default: from the host name).
    #[arg(long, value_name = "HEX")]
    pub machine_id: Option<String>,
}

/// A failure the CLI reports: a message and an exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    /// Bad input (exit 2).
    pub fn input(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 2,
        }
    }
    /// The agent itself failed (exit 1).
    pub fn failure(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 1,
        }
    }
    pub fn exit_code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Replay(args) => replay(&args),
        Command::Stats { file } => stats(&file),
        Command::Run(args) => run_live(&args),
        Command::Service { action } => service(action),
        Command::Content { action } => content(action),
        Command::Config { action } => config_command(action),
    }
}

/// The rules `--rules` names: a directory, or a signed archive when a
/// public key is given.
pub fn rules_location(rules: &RulesArgs) -> Result<Option<RulesLocation>, CliError> {
    let Some(path) = &rules.rules else {
        return Ok(None);
    };
    if path.is_dir() {
        return Ok(Some(RulesLocation::Directory(path.clone())));
    }
    let Some(key_path) = &rules.rules_pubkey else {
        return Err(CliError::input(if path.exists() {
            format!(
                "--rules {}: a file is read as a signed archive bundle; give --rules-pubkey FILE (and the signature as {}.sig or --rules-signature)",
                path.display(),
                path.display()
            )
        } else {
            format!("--rules {}: no such directory or archive", path.display())
        }));
    };
    let key = PublicKey::from_file(key_path)
        .map_err(|e| CliError::input(format!("--rules-pubkey: {e}")))?;
    let signature = rules.rules_signature.clone().unwrap_or_else(|| {
        let mut name = path.clone().into_os_string();
        name.push(".sig");
        PathBuf::from(name)
    });
    Ok(Some(RulesLocation::Signed {
        archive: path.clone(),
        signature,
        key,
    }))
}

/// The detector for `location`: its bundle on probation, or, when it does
/// not load and `state_dir` holds a last known good bundle, that bundle
/// (with a 1005 notice for the configured one). Also returns the location's
/// fingerprint taken before loading, for the watcher.
pub fn start_detector(
    location: &RulesLocation,
    rules: &RulesArgs,
    state_dir: Option<&Path>,
) -> Result<(Detector, u64), CliError> {
    let policy = rules.policy();
    let fingerprint = location.fingerprint();
    let last_known_good = state_dir.map(LastKnownGood::in_state_dir);
    let guard = state_dir.map(CrashGuard::in_state_dir);
    let shown = location.path().display();
    // A process that died activating this very content left its marker:
    // do not die on it again (the last known good runs, 1005 says why).
    let loaded = if guard.as_ref().is_some_and(|g| g.crashed_on(fingerprint)) {
        Err(BundleError::Unsafe {
            path: location.path().to_owned(),
            why: "the agent stopped while activating this content before; it is not loaded again until it changes".into(),
        })
    } else {
        if let Some(guard) = &guard {
            let _ = guard.arm(fingerprint);
        }
        let loaded = location.load(policy);
        if let Some(guard) = &guard {
            guard.disarm();
        }
        loaded
    };
    let detector = match loaded {
        Ok(report) => {
            for rejection in &report.rejections {
                eprintln!("{rejection}");
            }
            eprintln!(
                "rules {shown}: {} rules from {} files active ({} rejected)",
                report.bundle.engine.rule_count(),
                report.files,
                report.rejections.len()
            );
            let notice = Notice::Activated {
                source: report.bundle.source.clone(),
                rules: report.bundle.engine.rule_count(),
                files: report.files,
                previous: None,
            };
            let mut detector = Detector::start(report);
            detector.notify(notice);
            detector
        }
        Err(error) => {
            let Some(last_known_good) = &last_known_good else {
                return Err(CliError::input(format!("rules {shown}: {error}")));
            };
            let report = last_known_good
                .load(policy, location.key())
                .map_err(|lkg_error| {
                    CliError::input(format!(
                        "rules {shown}: {error}\nand the last known good bundle cannot be used either: {lkg_error}"
                    ))
                })?;
            eprintln!(
                "rules {shown}: {error}\nrunning the last known good bundle {} instead ({} rules)",
                last_known_good.path().display(),
                report.bundle.engine.rule_count()
            );
            // It passed probation when it was saved: no probation, no save.
            let mut detector = Detector::new(Arc::clone(&report.bundle));
            detector.notify(Notice::Rejected {
                source: location.path().to_owned(),
                running: report.bundle.source.clone(),
                reason: error.to_string(),
            });
            detector.notify(Notice::Activated {
                source: report.bundle.source.clone(),
                rules: report.bundle.engine.rule_count(),
                files: report.files,
                previous: None,
            });
            detector
        }
    };
    let detector = match last_known_good {
        Some(last_known_good) => detector.with_last_known_good(last_known_good),
        None => detector,
    };
    Ok((detector.with_budget(rules.budget()), fingerprint))
}

/// Gives `pipeline` the detector if rules were given. A bundle that does
/// not compile (and no last known good to fall back to) is bad input:
/// nothing runs on it.
fn attach_detector(pipeline: &mut Pipeline, rules: &RulesArgs) -> Result<(), CliError> {
    if let Some(location) = rules_location(rules)? {
        let (detector, _) = start_detector(&location, rules, rules.state_dir.as_deref())?;
        pipeline.detector = Some(detector);
    }
    Ok(())
}

/// The pipeline for `config`, filtered by the Sysmon configuration
/// `--config` names (if any): its HashAlgorithms replace the hashes (unless
/// enrichment is off), and with `watch` a changed file is reloaded every
/// `--config-poll` seconds. A configuration that does not load is bad
/// input: the agent does not start on it (a reload that fails keeps the
/// running one instead).
pub fn pipeline_with_config(
    mut config: Config,
    args: &SysmonConfigArgs,
    watch: bool,
) -> Result<Pipeline, CliError> {
    let Some(path) = &args.config else {
        return Ok(Pipeline::new(config));
    };
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::input(format!("--config {}: cannot read: {e}", path.display())))?;
    let loaded = ringside_content::sysmon_config::parse::parse_bytes(&bytes, path, &|name| {
        std::env::var(name).ok()
    })
    .map_err(|e| CliError::input(format!("--config: {e}")))?;
    eprint!("{}", loaded.report);
    if let (Some(algorithms), false) = (
        loaded.config.hash_algorithms,
        config.enrich.hashes.is_empty(),
    ) {
        config.enrich.hashes = crate::config::hash_set(algorithms);
    }
    let mut filter = crate::config::ConfigFilter::new(loaded);
    let off = crate::config::kinds_switched_off(filter.event_mask());
    if !off.is_empty() {
        let names: Vec<&str> = off.iter().map(|k| k.name()).collect();
        eprintln!(
            "--config {}: can never log {}; the driver is not asked for them unless Sigma rules read them",
            path.display(),
            names.join(", ")
        );
    }
    if watch && args.config_poll > 0 {
        let updates =
            crate::config::watch::spawn(path, bytes, Duration::from_secs(args.config_poll))
                .map_err(|e| {
                    CliError::failure(format!("cannot start the configuration watcher: {e}"))
                })?;
        filter = filter.with_updates(updates);
    }
    let mut pipeline = Pipeline::new(config);
    pipeline.filter = Some(filter);
    Ok(pipeline)
}

/// `  ProcessCreate: applied N, ignored M (…), rejected K` per event type
/// (`-`: elements outside event elements).
fn print_by_type(report: &ringside_content::sysmon_config::LoadReport) {
    for (event_type, counts) in report.counts_by_event_type() {
        println!("  {event_type}: {counts}");
    }
}

fn config_command(action: ConfigAction) -> Result<ExitCode, CliError> {
    use ringside_content::sysmon_config::{self, ConfigError};
    match action {
        ConfigAction::Check { file, by_type } => match sysmon_config::load(&file) {
            Ok(loaded) => {
                print!("{}", loaded.report);
                if by_type {
                    print_by_type(&loaded.report);
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(ConfigError::Rejected(report)) => {
                print!("{report}");
                if by_type {
                    print_by_type(&report);
                }
                Ok(ExitCode::from(2))
            }
            Err(error) => Err(CliError::input(error.to_string())),
        },
        ConfigAction::Test { file, events } => {
            let loaded = sysmon_config::load(&file).map_err(|e| CliError::input(e.to_string()))?;
            let report = crate::config::check::test(&loaded.config, &events)
                .map_err(|e| CliError::input(format!("{}: {e}", events.display())))?;
            let mut out = io::stdout().lock();
            for line in &report.lines {
                let _ = writeln!(out, "{line}");
            }
            let _ = writeln!(out, "{}", report.summary());
            let _ = out.flush();
            for problem in &report.problems {
                eprintln!("{problem}");
            }
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
    }
}

/// A watcher of `location` polling every `poll_secs` (none if 0).
pub fn spawn_watcher(
    location: RulesLocation,
    rules: &RulesArgs,
    fingerprint: u64,
    poll_secs: u64,
) -> Result<Option<WatchHandle>, CliError> {
    if poll_secs == 0 {
        return Ok(None);
    }
    let mut watcher =
        BundleWatcher::new(location, rules.policy(), fingerprint).with_validator(validator(rules)?);
    if let Some(state) = &rules.state_dir {
        watcher = watcher.with_crash_guard(CrashGuard::in_state_dir(state));
    }
    watcher
        .spawn(Duration::from_secs(poll_secs))
        .map(Some)
        .map_err(|e| CliError::failure(format!("cannot start the rules watcher: {e}")))
}

fn content(action: ContentAction) -> Result<ExitCode, CliError> {
    match action {
        ContentAction::Check { dir } => {
            let report = ringside_content::check(&dir)
                .map_err(|e| CliError::input(format!("{}: {e}", dir.display())))?;
            print!("{report}");
            Ok(if report.rejections.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        ContentAction::Validate(rules) => validate(&rules),
        ContentAction::Test { rules, regression } => {
            let report = ringside_content::regression(&rules, &regression)
                .map_err(|e| CliError::input(format!("{}: {e}", rules.display())))?;
            print!("{report}");
            if report.cases.is_empty() {
                // Nothing was tested: not a pass.
                eprintln!(
                    "content test: no regression case ran (no info.yml under {})",
                    regression.display()
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(if report.fired() == report.cases.len() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Most memory and CPU time `content validate` may use: far above what
/// content within the compile budgets needs (the largest bundle at the
/// budgets' limits builds in ~3 s and ~150 MiB). On Unix the memory is
/// address space (setrlimit); on Windows, committed memory (a job object).
const VALIDATE_MEMORY: u64 = 4 << 30;
const VALIDATE_CPU_SECONDS: u64 = 120;
/// Longest the agent waits for `content validate` before killing it.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(180);

fn validate(rules: &RulesArgs) -> Result<ExitCode, CliError> {
    #[cfg(unix)]
    {
        use rlimit::Resource;
        // Best effort: where a limit cannot be set, the timeout remains.
        let _ = rlimit::setrlimit(Resource::AS, VALIDATE_MEMORY, VALIDATE_MEMORY);
        let _ = rlimit::setrlimit(Resource::CPU, VALIDATE_CPU_SECONDS, VALIDATE_CPU_SECONDS);
    }
    #[cfg(windows)]
    {
        // Best effort, as above: without a job, the timeout remains.
        let memory = usize::try_from(VALIDATE_MEMORY).unwrap_or(usize::MAX);
        if let Err(error) = crate::win::limit_this_process(memory, VALIDATE_CPU_SECONDS) {
            eprintln!(
                "ringside-agent: content validate runs without memory and CPU limits: {error}"
            );
        }
    }
    // Test builds only: an abort inside the compile step, as content that
    // hits a bug in the compiler would cause.
    #[cfg(debug_assertions)]
    if std::env::var_os("RINGSIDE_TEST_ABORT_IN_COMPILE").is_some() {
        std::process::abort();
    }
    let location = rules_location(rules)?
        .ok_or_else(|| CliError::input("content validate: --rules is required".to_owned()))?;
    Ok(match location.load(rules.policy()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(2),
    })
}

/// The separate compile `content validate` does for `rules`, as a
/// validator for the watcher: this executable with the same rules options.
pub fn validator(rules: &RulesArgs) -> Result<Validator, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::failure(format!("cannot find the agent's own executable: {e}")))?;
    let rules = rules.clone();
    Ok(Validator {
        command: Box::new(move |_location| {
            let mut command = std::process::Command::new(&exe);
            command.args(["content", "validate"]);
            if let Some(path) = &rules.rules {
                command.arg("--rules").arg(path);
            }
            if rules.lenient_rules {
                command.arg("--lenient-rules");
            }
            if let Some(key) = &rules.rules_pubkey {
                command.arg("--rules-pubkey").arg(key);
            }
            if let Some(signature) = &rules.rules_signature {
                command.arg("--rules-signature").arg(signature);
            }
            command
        }),
        timeout: VALIDATE_TIMEOUT,
    })
}

/// FNV-1a of the host name: a stable machine id without privileges.
fn default_machine_id() -> u32 {
    let name = std::env::var("COMPUTERNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    name.trim().bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The live agent's configuration: slow enrichment on a worker thread, so
/// the thread that reads the driver never waits for a file hash or a
/// domain controller (see [`crate::enrich`]); and its pids are live
/// processes, whose current directory it reads.
pub fn live_config(args: &EnrichArgs) -> Result<Config, CliError> {
    let mut config = pipeline_config(args)?;
    config.enrich.background = Some(crate::enrich::DEFAULT_QUEUE);
    config.enrich.live_processes = !args.no_enrich;
    Ok(config)
}

/// The pipeline configuration the enrichment options describe.
pub fn pipeline_config(args: &EnrichArgs) -> Result<Config, CliError> {
    let machine_id = match &args.machine_id {
        Some(hex) => u32::from_str_radix(hex.trim_start_matches("0x"), 16).map_err(|_| {
            CliError::input(format!("--machine-id `{hex}`: expected up to 8 hex digits"))
        })?,
        None => default_machine_id(),
    };
    let hashes =
        HashSet::parse(&args.hashes).map_err(|e| CliError::input(format!("--hashes: {e}")))?;
    let enrich = if args.no_enrich {
        EnrichConfig::none()
    } else {
        EnrichConfig {
            hashes,
            files_root: args.files_root.clone(),
            ..EnrichConfig::default()
        }
    };
    Ok(Config {
        machine_id,
        enrich,
        ..Config::default()
    })
}

/// The sink the `--output` options name: one, or a [`Fanout`] of several.
pub fn open_sink(args: &OutputArgs) -> Result<Box<dyn Sink>, CliError> {
    let mut sinks = Vec::with_capacity(args.output.len());
    for output in &args.output {
        sinks.push(open_one_sink(output, args)?);
    }
    if sinks.len() == 1
        && let Some(sink) = sinks.pop()
    {
        return Ok(sink);
    }
    Ok(Box::new(Fanout { sinks }))
}

fn open_one_sink(output: &str, args: &OutputArgs) -> Result<Box<dyn Sink>, CliError> {
    if output == "stdout" || output == "-" {
        return Ok(Box::new(JsonLines::new(io::stdout().lock())));
    }
    if let Some(target) = Target::parse(output) {
        let target = target.map_err(CliError::input)?;
        let sink = NetworkSink::start(target, args.delivery.network_options())
            .map_err(|e| CliError::input(format!("--output `{output}`: {e}")))?;
        return Ok(Box::new(sink));
    }
    let Some(path) = output.strip_prefix("file:") else {
        return Err(CliError::input(format!(
            "--output `{output}`: expected `stdout`, `file:PATH`, `relp+tls://HOST:PORT` or `syslog+tls://HOST:PORT`"
        )));
    };
    let file = RotatingFile::open(Path::new(path), args.rotate_bytes, args.keep)
        .map_err(|e| CliError::input(format!("{path}: cannot open for writing: {e}")))?;
    Ok(Box::new(file))
}

/// Opens a replay file, naming it in any error.
fn open_replay(file: &Path) -> Result<ReplayReader<io::BufReader<std::fs::File>>, CliError> {
    ReplayReader::open(file).map_err(|e| {
        CliError::input(format!(
            "{}: {e}\n(expected a ringside replay file, as written by `ringside-agent run --record` or `cargo xtask demo --record`)",
            file.display()
        ))
    })
}

/// A one-line progress display on stderr, only when stderr is a terminal.
struct Progress {
    enabled: bool,
    total: u64,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new(total: u64) -> Self {
        Progress {
            enabled: io::stderr().is_terminal(),
            total,
            last: Instant::now(),
            shown: false,
        }
    }

    fn update(&mut self, offset: u64, counters: &Counters) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(250) {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        let percent = offset
            .saturating_mul(100)
            .checked_div(self.total)
            .unwrap_or(100);
        eprint!(
            "\r{percent:3}%  {offset}/{} bytes  {} records  {} problems ",
            self.total,
            counters.records,
            counters.problem_count()
        );
    }

    fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

/// Reads a whole replay into `sink`; returns the pipeline for reporting.
fn run_replay(
    file: &Path,
    mut pipeline: Pipeline,
    sink: &mut dyn Sink,
) -> Result<Pipeline, CliError> {
    let mut reader = open_replay(file)?;
    let total = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let mut progress = Progress::new(total);
    pipeline
        .replay(&mut reader, sink, |offset, counters| {
            progress.update(offset, counters)
        })
        .map_err(|e| CliError::failure(format!("writing events failed: {e}")))?;
    progress.finish();
    Ok(pipeline)
}

/// Prints the input problems to stderr; true if there were any.
fn report_problems(file: &Path, counters: &Counters) -> bool {
    let count = counters.problem_count();
    if count == 0 {
        return false;
    }
    let classes: Vec<String> = counters
        .frame_errors
        .iter()
        .chain(&counters.decode_errors)
        .map(|(class, n)| format!("{class}={n}"))
        .collect();
    eprintln!(
        "{}: {count} problem(s) in the input ({}); the rest of the file was read",
        file.display(),
        classes.join(", ")
    );
    for problem in counters.problems.iter().take(10) {
        eprintln!("{}: {}", file.display(), problem.message);
    }
    if count > 10 {
        eprintln!(
            "{}: … {} more (each is an EventID 1003 line in the output)",
            file.display(),
            count - 10
        );
    }
    true
}

fn replay(args: &ReplayArgs) -> Result<ExitCode, CliError> {
    let config = pipeline_config(&args.enrich)?;
    let mut pipeline = pipeline_with_config(config, &args.sysmon, false)?;
    attach_detector(&mut pipeline, &args.rules)?;
    let mut sink = open_sink(&args.output)?;
    let pipeline = run_replay(&args.file, pipeline, sink.as_mut())?;
    if let Some(filter) = &pipeline.filter {
        eprintln!(
            "{}: Sysmon configuration {}: {} event(s) logged, {} dropped",
            args.file.display(),
            filter.config().source.display(),
            filter.logged,
            filter.dropped
        );
    }
    if let Some(detector) = &pipeline.detector {
        eprintln!("{}: {} alert(s)", args.file.display(), detector.alerts);
    }
    Ok(if report_problems(&args.file, &pipeline.counters) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn stats(file: &Path) -> Result<ExitCode, CliError> {
    // Every line is built (and discarded) so that each record's fate is
    // counted: a line written, or none, by kind.
    let config = Config {
        depth: Depth::Emit,
        enrich: EnrichConfig::none(),
        ..Config::default()
    };
    let pipeline = run_replay(file, Pipeline::new(config), &mut Discard::default())?;
    let c = &pipeline.counters;
    let mut out = io::stdout().lock();
    let span = match (c.first_time, c.last_time) {
        (Some(first), Some(last)) if last > first => (last - first) as f64 / 1e7,
        _ => 0.0,
    };
    let rate = if span > 0.0 {
        format!("{:.0} events/s", c.events_received() as f64 / span)
    } else {
        "-".into()
    };
    let _ = writeln!(
        out,
        "{}: {} frames, {} batches, {} records, {:.1} s of event time ({rate})",
        file.display(),
        c.frames,
        c.batches,
        c.records,
        span
    );
    let check = c.last_stats.as_ref().map(|(stats, view)| {
        let mut cross = cross_check(stats, view);
        // The file has ended: what was still on its way never came.
        cross.input_ended(stats, view, &c.view);
        (StatsCheck::new(stats), cross)
    });
    let _ = writeln!(
        out,
        "{:<20} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "kind",
        "received",
        "written",
        "unmapped",
        "produced",
        "delivered",
        "dropped",
        "in_ring",
        "lost_recs"
    );
    for kind in EventKind::ALL {
        let i = kind.index();
        let (produced, delivered, dropped, in_ring) = match &check {
            Some((check, _)) => {
                let k = check.per_kind[i];
                (
                    k.produced.to_string(),
                    k.delivered.to_string(),
                    k.dropped.to_string(),
                    k.in_ring.to_string(),
                )
            }
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{:<20} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            kind.name(),
            c.received[i],
            c.written[i],
            c.not_mapped[i],
            produced,
            delivered,
            dropped,
            in_ring,
            c.lost_events[i]
        );
    }
    let _ = writeln!(
        out,
        "sequence: {} gap(s), {} record(s) missing, {} regression(s); {} Lost record(s) reporting {} dropped event(s)",
        c.sequence_gaps,
        c.missing_records,
        c.sequence_regressions,
        c.lost_records,
        crate::pipeline::saturating_sum(&c.lost_events)
    );
    let _ = writeln!(
        out,
        "decode errors: {}  frame errors: {}  truncated fields: {}",
        c.decode_errors.values().sum::<u64>(),
        c.frame_errors.values().sum::<u64>(),
        c.truncated_fields
    );
    let mut code = ExitCode::SUCCESS;
    // Each record the agent received wrote a line or is counted as having
    // none (FileWrite, CloseModified, an open that created nothing).
    let mut untold = Vec::new();
    for kind in EventKind::ALL {
        let i = kind.index();
        let told = c.written[i].saturating_add(c.not_mapped[i]);
        if told != c.received[i] {
            untold.push(format!(
                "{} received {} but {} wrote a line and {} are counted without one",
                kind.name(),
                c.received[i],
                c.written[i],
                c.not_mapped[i]
            ));
        }
    }
    if untold.is_empty() {
        let _ = writeln!(
            out,
            "agent: every record received wrote a line or is counted without one: holds"
        );
    } else {
        code = ExitCode::from(1);
        let _ = writeln!(out, "agent: VIOLATED: {}", untold.join("; "));
    }
    match &check {
        None => {
            let _ = writeln!(
                out,
                "driver counters: no Stats frame in this file; produced == delivered + dropped cannot be checked"
            );
        }
        Some((check, cross)) => {
            let t = check.total;
            let verdict = match check.verdict_kind() {
                Verdict::Balanced => "holds".to_owned(),
                Verdict::InFlight => format!(
                    "consistent, {} event(s) still in the ring ({} bytes)",
                    t.in_ring, check.ring_used
                ),
                Verdict::Violated => {
                    code = ExitCode::from(1);
                    "VIOLATED: the driver lost count".to_owned()
                }
            };
            let _ = writeln!(
                out,
                "driver counters (last Stats frame): produced {} == delivered {} + dropped {}: {verdict}",
                t.produced, t.delivered, t.dropped
            );
            let verdict = match (cross.findings.is_empty(), cross.unchecked.is_empty()) {
                (false, _) => {
                    code = ExitCode::from(1);
                    "VIOLATED"
                }
                (true, true) => "holds",
                (true, false) => "consistent as far as it can be checked",
            };
            let _ = writeln!(
                out,
                "driver counters against this file's records and Lost records: {verdict}"
            );
            for finding in &cross.findings {
                let _ = writeln!(out, "  VIOLATED: {finding}");
            }
            for reason in &cross.unchecked {
                let _ = writeln!(out, "  not checked: {reason}");
            }
        }
    }
    let _ = out.flush();
    if report_problems(file, c) {
        code = ExitCode::from(2);
    }
    Ok(code)
}

/// Gives a live pipeline the detector for `rules` (if any), keeping the
/// last known good bundle in the state directory (default
/// `%ProgramData%\ringside`) and watching the rules every `poll_secs`.
#[cfg(windows)]
pub fn attach_rules(
    pipeline: &mut Pipeline,
    rules: &RulesArgs,
    poll_secs: u64,
) -> Result<(), CliError> {
    let Some(location) = rules_location(rules)? else {
        return Ok(());
    };
    let state_dir = rules.state_dir.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var("ProgramData").unwrap_or_else(|_| r"C:\ProgramData".into()))
            .join("ringside")
    });
    let (detector, fingerprint) = start_detector(&location, rules, Some(&state_dir))?;
    pipeline.detector = Some(
        match spawn_watcher(location, rules, fingerprint, poll_secs)? {
            Some(updates) => detector.with_updates(updates),
            None => detector,
        },
    );
    Ok(())
}

#[cfg(windows)]
fn run_live(args: &RunArgs) -> Result<ExitCode, CliError> {
    let mut pipeline = pipeline_with_config(live_config(&args.enrich)?, &args.sysmon, true)?;
    attach_rules(&mut pipeline, &args.rules, args.rules_poll)?;
    let mut sink = open_sink(&args.output)?;
    let stop = crate::source::stop::StopFlag::default();
    // Ctrl-C or closing the console stops the loop, which then delivers
    // what the READs hold, flushes the sink and finishes the recorder.
    crate::win::stop_on_console_events(stop.clone())
        .map_err(|e| CliError::failure(format!("cannot handle Ctrl-C: {e}")))?;
    let result = crate::source::device::run(pipeline, sink.as_mut(), args.record.as_deref(), &stop);
    crate::win::console_output_finished();
    result.map_err(|e| CliError::failure(e.to_string()))?;
    if let Some(event) = crate::win::console_event() {
        let recording = if args.record.is_some() {
            ", recording finished"
        } else {
            ""
        };
        eprintln!("ringside-agent: {event}: stopped, output flushed{recording}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(windows))]
fn run_live(_args: &RunArgs) -> Result<ExitCode, CliError> {
    Err(CliError::input(
        "`run` reads the ringside driver's device (\\\\.\\Ringside) and needs Windows; on this system use `ringside-agent replay FILE`",
    ))
}

#[cfg(windows)]
fn service(action: ServiceAction) -> Result<ExitCode, CliError> {
    crate::service::dispatch(action).map_err(|e| CliError::failure(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(windows))]
fn service(_action: ServiceAction) -> Result<ExitCode, CliError> {
    Err(CliError::input(
        "`service` manages a Windows service and needs Windows",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn service_args(argv: &[&str]) -> (bool, ServiceRunArgs) {
        let cli = Cli::try_parse_from(argv).expect("parses");
        match cli.command {
            Command::Service {
                action: ServiceAction::Install(args),
            } => (true, args),
            Command::Service {
                action: ServiceAction::Run(args),
            } => (false, args),
            other => panic!("not a service install/run: {other:?}"),
        }
    }

    /// What `service install` records as the service's command line is what
    /// `service run` parses back: the service runs with the rules it was
    /// installed with.
    #[test]
    fn the_installed_service_runs_with_the_rules_it_was_installed_with() {
        let (install, args) = service_args(&[
            "ringside-agent",
            "service",
            "install",
            "--rules",
            r"C:\ProgramData\ringside\rules.rsb",
            "--rules-pubkey",
            r"C:\ProgramData\ringside\rules.pub",
            "--state-dir",
            r"D:\state",
            "--lenient-rules",
            "--rules-budget-us",
            "500",
            "--rules-poll",
            "30",
            "--config",
            r"C:\ProgramData\ringside\sysmon.xml",
            "--config-poll",
            "5",
        ]);
        assert!(install);
        let mut argv: Vec<std::ffi::OsString> = vec!["ringside-agent".into()];
        argv.extend(args.run_arguments());
        let cli = Cli::try_parse_from(argv).expect("the service command line parses");
        let Command::Service {
            action: ServiceAction::Run(run),
        } = cli.command
        else {
            panic!("`service run` expected");
        };
        assert_eq!(run.rules.rules, args.rules.rules);
        assert_eq!(run.rules.rules_pubkey, args.rules.rules_pubkey);
        assert_eq!(run.rules.rules_signature, None);
        assert_eq!(run.rules.state_dir.as_deref(), Some(Path::new(r"D:\state")));
        assert!(run.rules.lenient_rules);
        assert_eq!(run.rules.rules_budget_us, 500);
        assert_eq!(run.rules.rules_budget_over, args.rules.rules_budget_over);
        assert_eq!(run.rules.rules_probation, args.rules.rules_probation);
        assert_eq!(run.rules_poll, 30);
        assert_eq!(run.sysmon.config, args.sysmon.config);
        assert!(run.sysmon.config.is_some());
        assert_eq!(run.sysmon.config_poll, 5);
    }

    /// A relative path given to `service install` is stored absolute,
    /// resolved against the directory install ran in: the service itself
    /// starts in System32.
    #[test]
    fn service_install_stores_paths_resolved_against_its_working_directory() {
        let (_, args) = service_args(&[
            "ringside-agent",
            "service",
            "install",
            "--rules",
            "rules",
            "--rules-pubkey",
            "keys/rules.pub",
            "--state-dir",
            "state",
            "--output-file",
            "out/events.jsonl",
        ]);
        let cwd = std::env::temp_dir().join("install-here");
        let resolved = args.resolved_against(&cwd);
        assert_eq!(resolved.rules.rules, Some(cwd.join("rules")));
        assert_eq!(
            resolved.rules.rules_pubkey,
            Some(cwd.join("keys/rules.pub"))
        );
        assert_eq!(resolved.rules.state_dir, Some(cwd.join("state")));
        assert_eq!(resolved.output_file, Some(cwd.join("out/events.jsonl")));
        assert_eq!(resolved.rules.rules_signature, None);
        // Absolute paths stay as they were.
        let absolute = std::env::temp_dir().join("abs-rules");
        let mut args = args.clone();
        args.rules.rules = Some(absolute.clone());
        assert_eq!(args.resolved_against(&cwd).rules.rules, Some(absolute));
        let argv = resolved.run_arguments();
        let at = argv
            .iter()
            .position(|a| a == "--output-file")
            .expect("stored");
        assert_eq!(argv[at + 1], cwd.join("out/events.jsonl").into_os_string());
    }

    /// The collectors and their TLS and spool options survive the trip
    /// through the service's stored command line.
    #[test]
    fn the_installed_service_keeps_its_collectors() {
        let (_, args) = service_args(&[
            "ringside-agent",
            "service",
            "install",
            "--output",
            "relp+tls://collector.example:2514",
            "--output",
            "syslog+tls://siem.example:6514",
            "--tls-ca",
            "ca.pem",
            "--tls-cert",
            "agent.pem",
            "--tls-key",
            "agent.key",
            "--tls-server-name",
            "collector",
            "--spool-dir",
            "spool",
            "--spool-max-bytes",
            "1000",
        ]);
        let cwd = std::env::temp_dir().join("install-here");
        let resolved = args.resolved_against(&cwd);
        let mut argv: Vec<std::ffi::OsString> = vec!["ringside-agent".into()];
        argv.extend(resolved.run_arguments());
        let (install, run) = service_args(
            &argv
                .iter()
                .map(|a| a.to_str().expect("UTF-8"))
                .collect::<Vec<_>>(),
        );
        assert!(!install);
        assert_eq!(
            run.collectors,
            [
                "relp+tls://collector.example:2514",
                "syslog+tls://siem.example:6514"
            ]
        );
        let d = &run.delivery;
        assert_eq!(d.tls_ca, Some(cwd.join("ca.pem")));
        assert_eq!(d.tls_cert, Some(cwd.join("agent.pem")));
        assert_eq!(d.tls_key, Some(cwd.join("agent.key")));
        assert_eq!(d.tls_server_name.as_deref(), Some("collector"));
        assert_eq!(d.spool_dir, Some(cwd.join("spool")));
        assert_eq!(d.spool_max_bytes, 1000);
    }

    #[test]
    fn a_service_without_rules_runs_without_rules() {
        let (_, args) = service_args(&["ringside-agent", "service", "run"]);
        assert_eq!(args.rules.rules, None);
        let argv = args.run_arguments();
        assert!(!argv.iter().any(|a| a == "--rules" || a == "--config"));
    }
}
