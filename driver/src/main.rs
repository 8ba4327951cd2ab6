//! `ringside.sys`. On Windows targets this is the kernel driver (see
//! `kernel/`); on any other host it is an empty program, so that
//! `cargo test --workspace` builds on Linux.

#![cfg_attr(windows, no_std, no_main)]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(windows)]
mod kernel;

#[cfg(not(windows))]
fn main() {
    eprintln!("ringside.sys builds only for x86_64-pc-windows-msvc: cargo xtask package");
}
