//! `ringside.sys`. On Windows targets this is the kernel driver (see
//! `kernel/`); on any other host it is an empty program, so that
//! `cargo test --workspace` builds on Linux.

#![cfg_attr(windows, no_std, no_main)]
// Unsafe fns are about contract, not implementation.
#![forbid(unsafe_op_in_unsafe_fn)]
// Kernel code never indexes, overflows, unwraps or panics (DESIGN.md
// principle 4); the release image's imports prove it (no KeBugCheckEx).
#![cfg_attr(
    windows,
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

#[cfg(windows)]
mod kernel;

#[cfg(not(windows))]
fn main() {
    eprintln!("ringside.sys builds only for x86_64-pc-windows-msvc: cargo xtask package");
}
