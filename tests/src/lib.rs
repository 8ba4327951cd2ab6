//! A Windows kernel model that runs the real `ringside.sys`.
//!
//! The driver image is loaded into a Unicorn x86-64 CPU ([`machine`], [`pe`]),
//! its imports are bound to modelled kernel APIs with their documented
//! contracts ([`api`]), and Driver-Verifier-style checks ([`verifier`]) run
//! in every test. [`agent`] drives the control device through real IRPs and
//! [`scenario`] fires the driver's registered callbacks as Windows would;
//! [`smp`] interleaves several CPUs over the same guest memory.

pub mod agent;
pub mod api;
pub mod cost;
pub mod demo;
pub mod driver_image;
pub mod file_io;
pub mod lane_watch;
pub mod layout;
pub mod machine;
pub mod memory;
pub mod pe;
pub mod races;
pub mod scenario;
pub mod smp;
pub mod verifier;

pub use machine::Machine;
