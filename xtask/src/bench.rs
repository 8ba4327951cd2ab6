//! `cargo xtask bench <what>`: each benchmark runs its workloads side by side
//! in one run on this machine and prints one table with ratios.

use crate::cmd::{cargo, root, run};

const USAGE: &str = "usage: cargo xtask bench <ring [criterion args] | content | agent [EVENTS] | config [EVENTS] | sinks [RECORDS] | driver [--profile]>";

pub fn run_bench(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("ring") => {
            // One bench binary prints the side-by-side table first (its own
            // timing loop, every workload in the same run), then runs the
            // criterion groups for the ring itself. Extra arguments go to
            // criterion (e.g. a filter, or `--quick`).
            let mut command = cargo();
            command.args(["bench", "-p", "ringside-ring", "--bench", "ring", "--"]);
            command.args(args.get(1..).unwrap_or_default());
            run(&mut command)
        }
        // The content engine against sigma-rust (optimised build).
        Some("content") => {
            run(cargo().args(["bench", "-p", "ringside-content", "--bench", "content"]))
        }
        // The agent's stage throughput over a generated replay of at least a
        // million events (kept in `target/`).
        Some("agent") => {
            let (file, events) = generated_replay(args)?;
            agent_example("bench", &[&file, &events])
        }
        // Sysmon configuration decisions (sysmon-modular's, from shared
        // data) beside decode + process table over the same generated
        // replay `bench agent` uses.
        Some("config") => {
            let (file, events) = generated_replay(args)?;
            let config =
                root().join("../shared/data/sysmon-config/sysmon-modular-sysmonconfig.xml");
            if !config.is_file() {
                return Err(format!("{} not found (shared data)", config.display()));
            }
            let config = config
                .to_str()
                .ok_or("config path is not UTF-8")?
                .to_owned();
            agent_example("bench_config", &[&config, &file, &events])
        }
        // Delivery: the file sink beside RELP/TLS and syslog/TLS to a real
        // rsyslog on loopback (installed by xtask's setup), events/s and
        // CPU time per event, about a million events.
        Some("sinks") => {
            let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
            agent_example("bench_sinks", &rest)
        }
        // Deterministic instruction counts of the real driver in the
        // kernel model (not wall time); `--profile` adds where they ran.
        Some("driver") => {
            let mut command = cargo();
            command.args([
                "run",
                "--quiet",
                "-p",
                "ringside-kmodel",
                "--bin",
                "bench-driver",
                "--",
            ]);
            command.args(args.get(1..).unwrap_or_default());
            run(&mut command)
        }
        Some(other) => Err(format!("unknown benchmark `{other}`\n{USAGE}")),
        None => Err(USAGE.into()),
    }
}

/// The generated replay `bench agent` and `bench config` read
/// (`target/bench-agent-abiN-EVENTS.replay`, EVENTS from the arguments or a
/// million), and EVENTS. The wire ABI is in the name: a file generated
/// before a version bump is not one this agent reads, and is made anew.
fn generated_replay(args: &[String]) -> Result<(String, String), String> {
    let events = args.get(1).cloned().unwrap_or_else(|| "1000000".into());
    let file = root().join("target").join(format!(
        "bench-agent-abi{}-{events}.replay",
        ringside_wire::ABI_VERSION
    ));
    let file = file.to_str().ok_or("target path is not UTF-8")?.to_owned();
    Ok((file, events))
}

/// The agent's example `name` with `args`, in a release build.
fn agent_example(name: &str, args: &[&str]) -> Result<(), String> {
    run(cargo()
        .args(["run", "--release", "--quiet", "-p", "ringside-agent"])
        .args(["--example", name, "--"])
        .args(args))
}
