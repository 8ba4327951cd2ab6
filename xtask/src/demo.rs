//! `cargo xtask demo [--record FILE]`: the whole system on Linux.
//!
//! 1. The kernel model's demo binary (`tests/src/bin/demo.rs`) plays an
//!    attack-like scenario through the emulated `ringside.sys`, drains it
//!    through the driver's READ path and prints the timeline; it writes the
//!    raw READ batches as a replay file (FILE, or `target/demo/demo.replay`).
//! 2. `ringside-agent replay` decodes that file, builds the process table and
//!    writes Sysmon-style JSON lines to `target/demo/events.jsonl`, evaluating
//!    the SigmaHQ Windows rules from `../shared/data/sigma` when they are
//!    there (lenient: rules for logsources ringside does not observe are
//!    reported and skipped).
//!    With sysmon-modular's configuration (`../shared/data/sysmon-config`)
//!    as `--config`: only the events it logs are written, with its RuleName.
//! 3. The alerts are printed as a table, and `config test` shows, for every
//!    event of the unfiltered run, whether the configuration keeps it and
//!    which rule decided.

use std::path::{Path, PathBuf};

use crate::cmd::{cargo, root, run};

pub fn run_demo(args: &[String]) -> Result<(), String> {
    let record = match args {
        [] => root().join("target/demo/demo.replay"),
        // The child runs in the workspace root: resolve FILE against where
        // the user ran `cargo xtask`.
        [flag, file] if flag == "--record" => std::env::current_dir()
            .map_err(|e| format!("current directory: {e}"))?
            .join(file),
        _ => return Err("usage: cargo xtask demo [--record FILE]".into()),
    };
    let out_dir = root().join("target/demo");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;

    run(cargo()
        .args([
            "run",
            "--quiet",
            "-p",
            "ringside-kmodel",
            "--bin",
            "demo",
            "--",
            "--record",
        ])
        .arg(&record))?;

    let events = out_dir.join("events.jsonl");
    // The agent's file sink appends (as a service's log must): without this
    // a second demo would show the first one's events and alerts again.
    match std::fs::remove_file(&events) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("{}: {e}", events.display()));
        }
        _ => {}
    }
    let mut agent = cargo();
    agent
        .args(["run", "--quiet", "-p", "ringside-agent", "--", "replay"])
        .arg(&record);
    agent
        .arg("--output")
        .arg(format!("file:{}", events.display()));
    let config = root().join("../shared/data/sysmon-config/sysmon-modular-sysmonconfig.xml");
    if config.is_file() {
        agent.arg("--config").arg(&config);
    }
    let rules = root().join("../shared/data/sigma/rules/windows");
    if rules.is_dir() {
        agent.arg("--rules").arg(&rules).arg("--lenient-rules");
    } else {
        eprintln!(
            "note: {} not found; running the agent without detection content",
            rules.display()
        );
    }
    // The rejected rules' reasons go to a file; the summary line is enough here.
    let rejections = out_dir.join("rules-rejected.txt");
    let log =
        std::fs::File::create(&rejections).map_err(|e| format!("{}: {e}", rejections.display()))?;
    agent.stderr(log);
    run(&mut agent).map_err(|e| format!("{e} (agent messages: {})", rejections.display()))?;
    summarize(&events, &rejections)?;
    if config.is_file() {
        config_decisions(&record, &config, &out_dir)?;
    }
    Ok(())
}

/// Every event of the scenario, unfiltered, decided by `config`: kept or
/// dropped, and by which rule.
fn config_decisions(record: &Path, config: &Path, out_dir: &Path) -> Result<(), String> {
    let all = out_dir.join("events-unfiltered.jsonl");
    let _ = std::fs::remove_file(&all);
    run(cargo()
        .args(["run", "--quiet", "-p", "ringside-agent", "--", "replay"])
        .arg(record)
        .arg("--output")
        .arg(format!("file:{}", all.display())))?;
    let output = cargo()
        .args([
            "run",
            "--quiet",
            "-p",
            "ringside-agent",
            "--",
            "config",
            "test",
        ])
        .arg(config)
        .arg(&all)
        .output()
        .map_err(|e| format!("config test: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    println!(
        "
Sysmon configuration {}:",
        config.display()
    );
    let prefix = format!("{}:", all.display());
    for line in text.lines() {
        println!("  {}", line.strip_prefix(&prefix).unwrap_or(line));
    }
    Ok(())
}

/// Prints the event counts and one line per alert.
fn summarize(events: &Path, rejections: &PathBuf) -> Result<(), String> {
    let text = std::fs::read_to_string(events).map_err(|e| format!("{}: {e}", events.display()))?;
    let mut counts = std::collections::BTreeMap::<u64, usize>::new();
    let mut alerts = Vec::new();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("{}: agent wrote invalid JSON: {e}", events.display()))?;
        if let Some(alert) = value.get("Alert") {
            alerts.push((alert.clone(), value["EventData"].clone()));
        } else if let Some(id) = value["EventID"].as_u64() {
            *counts.entry(id).or_default() += 1;
        }
    }
    let counts: Vec<String> = counts.iter().map(|(id, n)| format!("{n}×{id}")).collect();
    println!(
        "\nagent: {} Sysmon events ({}) in {}",
        text.lines().count() - alerts.len(),
        counts.join(", "),
        events.display()
    );
    let summary = std::fs::read_to_string(rejections).unwrap_or_default();
    if let Some(active) = summary.lines().find(|l| l.contains("rules from")) {
        println!("agent: {active} (reasons in {})", rejections.display());
    }
    println!("\n{} alerts:", alerts.len());
    for (alert, data) in &alerts {
        let subject = ["CommandLine", "TargetFilename", "ImageLoaded"]
            .iter()
            .find_map(|field| data[field].as_str())
            .unwrap_or("-");
        let subject: String = subject.chars().take(70).collect();
        println!(
            "  {:<8} {:<55} pid {:<5} {}",
            alert["Level"].as_str().unwrap_or("-"),
            alert["Title"].as_str().unwrap_or("-"),
            data["ProcessId"],
            subject
        );
    }
    Ok(())
}
