//! Kernel cost budget: instructions executed inside ringside.sys per
//! callback kind must stay within budget, and are deterministic.
//!
//! Target: < 400 instructions per event. First measurement (CAS
//! reservation, consumer zeroing): process create 513, process exit 116,
//! image load 278, post-create 360, first write 462, rename 448, delete 365,
//! close-after-modify 423.
//!
//! Current measurement (`cargo xtask bench driver`), after the ring moved to
//! the BPF-style reservation (bounded try-lock, busy tag written before
//! `prod_pos` is published: no consumer zeroing, no stale-tag window) and
//! the driver began holding DISPATCH_LEVEL around `reserve` (a CR8 raise and
//! lower): process create 540, process exit 224, image load 326,
//! post-create 364 (read-only open, no event: 63), first write 500 (again:
//! 52), rename 485, delete 404, close-after-modify 414. Five kinds exceed
//! the target. Budgets are the current values + ~10%, so a regression
//! fails; the target stays the goal.

use ringside_kmodel::cost::measure;
use ringside_kmodel::driver_image::ringside_sys;

const BUDGET: [(&str, u64); 10] = [
    ("process create", 595),      // measured 540 (over the 400 target)
    ("process exit", 245),        // measured 224
    ("image load", 360),          // measured 326
    ("post-create (event)", 400), // measured 364
    ("post-create (read-only, no event)", 70), // measured 63
    ("pre-write (first write)", 550), // measured 500 (over the 400 target)
    ("pre-write (again, no event)", 60), // measured 52
    ("pre-set-information (rename)", 535), // measured 485 (over the 400 target)
    ("pre-set-information (delete)", 445), // measured 404 (over the 400 target)
    ("pre-cleanup (close after modify)", 455), // measured 414 (over the 400 target)
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
