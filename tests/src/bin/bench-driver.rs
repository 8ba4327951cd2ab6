//! `cargo xtask bench driver`: instructions executed inside ringside.sys per
//! callback kind, in the kernel model (deterministic; see `ringside_kmodel::cost`).
//!
//! `--profile` also prints, per kind, where those instructions ran: per
//! function, inlined functions included (`incl`: the function and what it
//! inlined or called inside the image; `self`: its own instructions), per
//! invocation. Addresses are resolved with `llvm-symbolizer` (LLVM's, which
//! reads ringside.pdb natively); without it the profile lists raw RVAs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::process::{Command, ExitCode, Stdio};

use ringside_kmodel::cost::{Cost, RUNS, measure, measure_profiled};
use ringside_kmodel::driver_image::{ringside_sys, ringside_sys_path};
use ringside_kmodel::memory::IMAGE_BASE;

/// Functions listed per kind with `--profile`.
const TOP: usize = 24;

fn main() -> ExitCode {
    let profile = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--profile") => true,
        Some(other) => {
            eprintln!("bench driver: unknown argument `{other}` (usage: bench-driver [--profile])");
            return ExitCode::FAILURE;
        }
    };
    let measured = ringside_sys().and_then(|sys| {
        if profile {
            measure_profiled(sys)
        } else {
            measure(sys)
        }
    });
    let costs = match measured {
        Ok(costs) => costs,
        Err(e) => {
            eprintln!("bench driver: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "per callback (mean of {RUNS}): instructions inside ringside.sys (modelled kernel APIs \
         excluded), and the kernel APIs it called"
    );
    println!(
        "  {:<40} {:>6} {:>5}  kernel API calls per callback",
        "callback", "instrs", "APIs"
    );
    for c in &costs {
        println!(
            "  {:<40} {:>6} {:>5.1}  {}",
            c.callback,
            c.instructions,
            c.api_calls_per_call(),
            c.api_text()
        );
    }
    if profile {
        print_profiles(&costs);
    }
    ExitCode::SUCCESS
}

/// Inline frames (innermost first) of each RVA, or `None` without a symbolizer.
fn symbolize(rvas: &BTreeSet<u32>) -> Option<HashMap<u32, Vec<String>>> {
    // The symbolizer takes the image's preferred base addresses (as linked).
    let image = ringside_sys_path();
    let linked_base = 0x1_4000_0000_u64;
    let mut child = Command::new("llvm-symbolizer")
        .arg(format!("--obj={}", image.display()))
        .args(["--inlining", "--functions=linkage"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let input: String = rvas
        .iter()
        .map(|rva| format!("{:#x}\n", linked_base + u64::from(*rva)))
        .collect();
    child.stdin.take()?.write_all(input.as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        return None;
    }
    // One block per address: (function, location) line pairs, then a blank line.
    let text = String::from_utf8_lossy(&output.stdout);
    let blocks = text.split("\n\n");
    let mut frames = HashMap::new();
    for (rva, block) in rvas.iter().zip(blocks) {
        let names = block.lines().step_by(2).map(short_name).collect();
        frames.insert(*rva, names);
    }
    Some(frames)
}

/// `ringside_wire::encode::encode<T>` → `wire::encode::encode`.
fn short_name(name: &str) -> String {
    let name = name.trim();
    let name = name.split('<').next().unwrap_or(name);
    name.strip_prefix("ringside_")
        .or_else(|| name.strip_prefix("ringside::"))
        .unwrap_or(name)
        .replace("impl$", "impl")
}

fn print_profiles(costs: &[Cost]) {
    let rvas: BTreeSet<u32> = costs
        .iter()
        .flat_map(|c| c.profile.keys().copied())
        .collect();
    let frames = symbolize(&rvas);
    if frames.is_none() {
        println!(
            "\n(llvm-symbolizer not found or failed: RVAs only; image base in the model {IMAGE_BASE:#x})"
        );
    }
    let runs = RUNS as f64;
    for c in costs {
        println!("\n{} ({} per call)", c.callback, c.instructions);
        let Some(frames) = &frames else {
            for (rva, n) in &c.profile {
                println!("  {rva:#07x} {:>7.1}", *n as f64 / runs);
            }
            continue;
        };
        let mut inclusive: BTreeMap<&str, u64> = BTreeMap::new();
        let mut own: BTreeMap<&str, u64> = BTreeMap::new();
        for (rva, n) in &c.profile {
            let chain = frames.get(rva).map(Vec::as_slice).unwrap_or_default();
            if let Some(innermost) = chain.first() {
                *own.entry(innermost).or_default() += n;
            }
            let distinct: BTreeSet<&str> = chain.iter().map(String::as_str).collect();
            for f in distinct {
                *inclusive.entry(f).or_default() += n;
            }
        }
        let mut rows: Vec<(&str, u64)> = inclusive.into_iter().collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        println!("  {:>7} {:>7}  function", "incl", "self");
        for (f, n) in rows.into_iter().take(TOP) {
            let s = own.get(f).copied().unwrap_or(0);
            println!("  {:>7.1} {:>7.1}  {f}", n as f64 / runs, s as f64 / runs);
        }
    }
}
