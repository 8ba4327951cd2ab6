//! ringside's content engine: Sigma rules compiled in user mode against the
//! schema of what the sensor provides, evaluated by the agent.
//!
//! Content never reaches the kernel. Every rule is validated against
//! [`schema`] before it is used: a rule naming a field the event type does not
//! carry is rejected with file, line and reason (the 21-versus-20 defect).

#![forbid(unsafe_code)]

pub mod compile;
pub mod condition;
pub mod matcher;
pub mod modifiers;
pub mod schema;
pub mod yaml;
pub mod engine;
pub mod bundle;
pub mod check;
pub mod regression;

pub use bundle::{Bundle, BundleError, Content, LoadPolicy, LoadReport};
pub use check::{CheckReport, check};
pub use engine::{Alert, Engine, Scratch};
pub use regression::{RegressionReport, regression};
