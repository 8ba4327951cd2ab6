//! Kernel cost budget: instructions executed inside ringside.sys per
//! callback kind must stay within budget, and are deterministic.
//!
//! Target: < 400 instructions per event. First measurement (CAS
//! reservation, consumer zeroing): process create 513, process exit 116,
//! image load 278, post-create 360, first write 462, rename 448, delete 365,
//! close-after-modify 423.
//!
//! Then the ring moved to the BPF-style reservation (bounded try-lock, busy
//! tag written before `prod_pos` is published: no consumer zeroing, no
//! stale-tag window) and the driver began holding DISPATCH_LEVEL around
//! `reserve` (a CR8 raise and lower): process create 540, process exit 224,
//! image load 326, post-create 364 (read-only open, no event: 63), first
//! write 500 (again: 52), rename 485, delete 404, close-after-modify 414.
//!
//! Current measurement (`cargo xtask bench driver`; `--profile` shows where
//! they go), after the first-write set's hash took the product's top bits
//! and its removals left tombstones (lookups stop at a never-used slot),
//! process create encoded the token SIDs in place, and the encoder laid a
//! record out once into the exact reservation (`encode_exact`): process
//! create 435, process exit 221, image load 295, post-create 341
//! (read-only: 63), first write 346 (again: 39), rename 452, delete 376,
//! close-after-modify 320. Process create and rename still exceed the
//! target; of each, about 120 instructions are the ring's own (`reserve`,
//! `commit`).
//!
//! Current measurement, after the ring got one lane per CPU (reserved at
//! DISPATCH_LEVEL with no lock and no read-modify-write; the driver asks
//! `KeGetCurrentProcessorNumberEx` for its lane, and the batch check sums
//! the lanes) and a reservation keeps its slot's tag word and publishes by
//! one store to it: process create 435, process exit 219, image load 293,
//! post-create 341 (read-only: 63), first write 351 (again: 39), rename
//! 456, delete 381, close-after-modify 320. The lanes alone cost
//! about 25 instructions per event more than the shared lock on this
//! one-CPU model, in exchange for no locked instruction and no cache line
//! shared between CPUs on the event path (what instruction counts do not
//! show; `cargo xtask bench ring` does). Process create and rename still
//! exceed the target.
//! Budgets are the current values + at most 5%, so a regression fails; the
//! target stays the goal.

use ringside_kmodel::cost::measure;
use ringside_kmodel::driver_image::ringside_sys;

const BUDGET: [(&str, u64); 10] = [
    ("process create", 455),      // measured 435 (over the 400 target)
    ("process exit", 230),        // measured 219
    ("image load", 307),          // measured 293
    ("post-create (event)", 358), // measured 341
    ("post-create (read-only, no event)", 66), // measured 63
    ("pre-write (first write)", 368), // measured 351
    ("pre-write (again, no event)", 40), // measured 39
    ("pre-set-information (rename)", 478), // measured 456 (over the 400 target)
    ("pre-set-information (delete)", 399), // measured 381
    ("pre-cleanup (close after modify)", 336), // measured 320
];

#[test]
fn instructions_per_callback_are_deterministic_and_within_budget() {
    let sys = ringside_sys().expect("build ringside.sys");
    let first = measure(sys).expect("measure");
    let second = measure(sys).expect("measure again");
    assert_eq!(first, second, "instruction counts are not deterministic");
    assert_eq!(first.len(), BUDGET.len());
    let mut over = Vec::new();
    for (cost, (callback, budget)) in first.iter().zip(BUDGET) {
        assert_eq!(cost.callback, callback);
        assert!(
            cost.instructions > 0,
            "{callback}: no driver instructions counted"
        );
        if cost.instructions > budget {
            over.push(format!(
                "{callback}: {} > budget {budget}",
                cost.instructions
            ));
        }
    }
    assert!(over.is_empty(), "over budget:\n  {}", over.join("\n  "));
}
