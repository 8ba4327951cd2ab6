//! Driver-Verifier-style findings. Every modelled API checks its documented
//! contract and records a [`Finding`] when the driver breaks it; the machine
//! checks the unload-time invariants (nothing leaked, nothing left
//! registered). A test fails on any finding ([`crate::Machine::assert_clean`]).

use std::fmt;

/// One broken rule, with the API and the driver code address involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub message: String,
}

/// The rule classes, after Driver Verifier's checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// An API called above its documented maximum IRQL, or IRQL not restored.
    Irql,
    /// Pool: leaked at unload, freed twice, wrong tag, bad flags.
    Pool,
    /// A callback, filter or device still registered after unload.
    Registration,
    /// FltMgr name information not released (reference count not zero).
    NameInformation,
    /// A lock acquired and not released, or released without being held.
    Lock,
    /// An IRP left pending, completed twice, or completed with bad fields.
    Irp,
    /// The CPU faulted in the driver (bad memory access, stack overflow...).
    Fault,
    /// An API called with arguments its contract forbids.
    Contract,
    /// A callback ran after the driver unloaded.
    AfterUnload,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:?}] {}", self.rule, self.message)
    }
}

/// The findings of one machine.
#[derive(Clone, Debug, Default)]
pub struct Verifier {
    pub findings: Vec<Finding>,
}

impl Verifier {
    pub fn report(&mut self, rule: Rule, message: impl Into<String>) {
        self.findings.push(Finding {
            rule,
            message: message.into(),
        });
    }
}
