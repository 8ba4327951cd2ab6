//! Where raw batches come from: replay files everywhere, the driver's
//! control device on Windows. Sources only deliver bytes; all state (process
//! table, counters) lives in the pipeline so it survives a reconnect.

pub mod replay;
pub mod writer;

#[cfg(windows)]
pub mod device;
