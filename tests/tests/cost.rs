//! Kernel cost budget: instructions executed inside ringside.sys per
//! callback kind must stay within budget, and are deterministic.
//!
//! Target: < 400 instructions per event. First measurement (this commit,
//! `cargo xtask bench driver`): process create 513, process exit 116, image
//! load 278, post-create 360 (read-only open, no event: 63), first write 462
//! (again: 52), rename 448, delete 365, close-after-modify 423. Four kinds
//! exceed the target; their budgets are the measured value + ~10% so that a
//! regression fails, and the target stays the goal.

use ringside_kmodel::cost::measure;
use ringside_kmodel::driver_image::ringside_sys;

const BUDGET: [(&str, u64); 10] = [
    ("process create", 565),      // measured 513 (over the 400 target)
    ("process exit", 130),        // measured 116
    ("image load", 310),          // measured 278
    ("post-create (event)", 400), // measured 360
    ("post-create (read-only, no event)", 70), // measured 63
    ("pre-write (first write)", 510), // measured 462 (over the 400 target)
    ("pre-write (again, no event)", 60), // measured 52
    ("pre-set-information (rename)", 495), // measured 448 (over the 400 target)
    ("pre-set-information (delete)", 400), // measured 365
    ("pre-cleanup (close after modify)", 465), // measured 423 (over the 400 target)
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
