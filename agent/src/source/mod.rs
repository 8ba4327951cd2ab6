//! Where raw batches come from: replay files everywhere, the driver's
//! control device on Windows. Sources only deliver bytes; all state (process
//! table, counters) lives in the pipeline so it survives a reconnect. The
//! device source's logic that needs no Windows API (reconnect backoff,
//! stop) lives in platform-independent modules so it is tested on any host.

pub mod backoff;
pub mod reorder;
pub mod replay;
pub mod stop;
pub mod writer;

#[cfg(windows)]
pub mod device;
