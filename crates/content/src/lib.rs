//! ringside's content engine: Sigma rules compiled in user mode against the
//! schema of what the sensor provides, evaluated by the agent.
//!
//! Content never reaches the kernel. Every rule is validated against
//! [`schema`] before it is used: a rule naming a field the event type does not
//! carry is rejected with file, line and reason (the 21-versus-20 defect).

#![forbid(unsafe_code)]

pub mod archive;
pub mod budget;
pub mod bundle;
pub mod check;
pub mod compile;
pub mod condition;
pub mod engine;
pub mod files;
pub mod guard;
pub mod lkg;
pub mod matcher;
pub mod modifiers;
pub mod regression;
mod scan;
pub mod schema;
pub mod sysmon_config;
pub mod watch;
pub mod yaml;

pub use archive::{ArchiveError, ArchiveLimits, PublicKey, SignatureError};
pub use bundle::{Bundle, BundleError, BundleSource, Content, LoadPolicy, LoadReport};
pub use check::{CheckReport, check};
pub use engine::{Alert, Engine, Scratch};
pub use guard::{CrashGuard, Validator};
pub use lkg::LastKnownGood;
pub use regression::{RegressionReport, regression};
pub use watch::{BundleWatcher, RulesLocation, WatchEvent, WatchHandle};
