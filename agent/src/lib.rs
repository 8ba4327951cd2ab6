//! ringside's user-mode agent: reads raw record batches from the driver's
//! control device (Windows) or from replay files, decodes them with
//! `ringside-wire`, keeps a process table, enriches in user mode, and writes
//! Sysmon-style JSON lines. Every byte it reads is treated as hostile.
//!
//! Data path: [`source`] → [`pipeline`] (decode, [`process_table`],
//! [`enrich`], [`sysmon`] mapping) → [`sink`].

// No unsafe anywhere but the Windows FFI module `win`, which documents each
// block; on other targets the crate is entirely safe code.
#![cfg_attr(not(windows), forbid(unsafe_code))]
#![cfg_attr(windows, deny(unsafe_code))]

pub mod call_trace;
pub mod cli;
pub mod config;
pub mod crosscheck;
pub mod detect;
pub mod enrich;
pub mod paths;
pub mod pipeline;
pub mod process_table;
pub mod registry;
pub mod service_report;
pub mod sink;
pub mod source;
pub mod stats;
pub mod stream;
pub mod synth;
pub mod sysmon;
pub mod time;

#[cfg(windows)]
pub mod service;
#[cfg(windows)]
#[expect(
    unsafe_code,
    reason = "the one module that calls Win32 APIs; every block has a SAFETY comment"
)]
mod win;
