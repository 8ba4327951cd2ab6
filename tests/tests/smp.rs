//! The driver on several CPUs: every scenario of `ringside_kmodel::races`
//! under a budget of seeded schedules (PCT priorities, random switches,
//! DPCs and timer expiries at any instruction). A finding prints the seed
//! that replays it: `RINGSIDE_SMP_SEED=<seed> cargo test -p ringside-kmodel
//! --test smp`. `cargo xtask soak --seeds N` runs N per scenario.

use std::time::Instant;

use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::races::SCENARIOS;

/// Schedules per scenario in `cargo xtask test` (CI); `RINGSIDE_SMP_SEEDS`
/// overrides.
const CI_SEEDS: u64 = 150;

fn seeds() -> std::ops::Range<u64> {
    if let Some(seed) = std::env::var("RINGSIDE_SMP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return seed..seed + 1;
    }
    let n = std::env::var("RINGSIDE_SMP_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CI_SEEDS);
    0..n
}

#[test]
fn no_schedule_finds_anything_in_any_scenario() {
    let sys = ringside_sys().expect("build ringside.sys");
    let mut failures = Vec::new();
    for (name, scenario) in SCENARIOS {
        let started = Instant::now();
        let (mut steps, mut switches, mut dpcs, mut runs) = (0, 0, 0, 0u64);
        for seed in seeds() {
            match scenario(sys, seed) {
                Ok(found) => {
                    runs += 1;
                    steps += found.steps;
                    switches += found.switches;
                    dpcs += found.dpcs;
                    if !found.findings.is_empty() {
                        failures.push(format!(
                            "{name}, seed {seed}:\n  {}",
                            found.findings.join("\n  ")
                        ));
                    }
                }
                Err(e) => failures.push(format!("{name}, seed {seed}: {e}")),
            }
            if failures.len() > 5 {
                break;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{name}: {runs} schedules in {secs:.1} s ({:.0}/s); {} driver instructions, {} switches, {} DPCs delivered per schedule on average",
            runs as f64 / secs,
            steps / runs.max(1),
            switches / runs.max(1),
            dpcs / runs.max(1)
        );
    }
    assert!(failures.is_empty(), "findings:\n{}", failures.join("\n"));
}
