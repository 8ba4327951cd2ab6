//! The Sysmon configuration in the agent (`--config FILE`): which events
//! are written, the `RuleName` they carry, the hashes computed, and which
//! event kinds the driver is asked to observe at all.
//!
//! The configuration is parsed and validated by `ringside-content`
//! ([`ringside_content::sysmon_config`]); this module applies it between
//! the pipeline's event building and its sink. An event the configuration
//! drops is not written, as in Sysmon; the Sigma detector still evaluates
//! it, so on-box detections do not depend on what the configuration keeps
//! (an alert carries the event's fields). ringside's own events
//! (1001–1006) and file renames (1011, which Sysmon has no event for) are
//! never filtered.

pub mod check;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ringside_content::schema::Logsource;
use ringside_content::sysmon_config::{
    self, ConfigError, FilterEvent, HashAlgorithms, Loaded, Scratch, SysmonConfig, Target,
};
use ringside_wire::EventKind;

use crate::detect::Notice;
use crate::enrich::hash::HashSet;
use crate::sysmon::{EventType, SysmonEvent};

impl FilterEvent for SysmonEvent {
    fn target(&self) -> Option<Target> {
        match self.event_type() {
            EventType::Sigma(Logsource::ProcessCreation) => Some(Target::ProcessCreate),
            EventType::ProcessTerminate => Some(Target::ProcessTerminate),
            EventType::Sigma(Logsource::ImageLoad) => Some(Target::ImageLoad),
            EventType::Sigma(Logsource::DriverLoad) => Some(Target::DriverLoad),
            EventType::Sigma(Logsource::FileEvent) => Some(Target::FileCreate),
            EventType::Sigma(Logsource::FileDelete) => Some(Target::FileDelete),
            EventType::Sigma(
                Logsource::RegistrySet
                | Logsource::RegistryAdd
                | Logsource::RegistryDelete
                | Logsource::RegistryRename,
            ) => Some(Target::Registry),
            EventType::Sigma(Logsource::ProcessAccess) => Some(Target::ProcessAccess),
            EventType::Sigma(Logsource::CreateRemoteThread) => Some(Target::CreateRemoteThread),
            EventType::Sigma(Logsource::CreateStreamHash) => Some(Target::FileCreateStreamHash),
            EventType::Sigma(Logsource::PipeCreated) => Some(Target::Pipe),
            _ => None,
        }
    }

    /// [`Target::fields`] are the same tables as [`EventType::fields`], so
    /// the indices agree; but a registry event's table is its own id's (12,
    /// 13 or 14), and `RegistryEvent` filters name the union of the three:
    /// those are looked up by name.
    fn field(&self, index: usize) -> Option<&str> {
        match self.event_type() {
            EventType::Sigma(logsource) if logsource.covered_by().is_some() => {
                let name = Target::Registry.fields().get(index)?.name;
                self.get_named(name)
            }
            _ => self.value(index),
        }
    }
}

/// The kinds the driver must observe under `config`: process creation and
/// exit always (the process table, which every other event's `Image` and
/// `User` come from, is built from them even when they are not written),
/// renames always (not a Sysmon event: not filtered), and the other kinds
/// only when the configuration can log one of their events. FileWrite,
/// which the agent never maps, stays off as by default. Two kinds off by
/// default are asked for when the configuration can log their event
/// (Sysmon logs neither without a rule for it): process access (10), and
/// the close of a modified handle, whose named streams are Sysmon's 15.
pub fn event_mask(config: &SysmonConfig) -> u32 {
    let mut mask = ringside_wire::kind::DEFAULT_EVENTS_MASK;
    for (kind, target) in OPT_IN {
        if config.can_log(target) {
            mask |= kind.mask_bit();
        }
    }
    // One kernel kind, two events: an image load is a 7 or, for a
    // system-mode image, a 6, so the kind stays on if either can be logged.
    for (kind, targets) in [
        (
            EventKind::ImageLoad,
            &[Target::ImageLoad, Target::DriverLoad][..],
        ),
        (EventKind::FileCreate, &[Target::FileCreate][..]),
        (EventKind::FileDelete, &[Target::FileDelete][..]),
        (EventKind::RegistrySetValue, &[Target::Registry][..]),
        (EventKind::RegistryKey, &[Target::Registry][..]),
        (EventKind::RegistryRename, &[Target::Registry][..]),
        (EventKind::RemoteThread, &[Target::CreateRemoteThread][..]),
        (EventKind::NamedPipe, &[Target::Pipe][..]),
    ] {
        if !targets.iter().any(|target| config.can_log(*target)) {
            mask &= !kind.mask_bit();
        }
    }
    mask
}

/// The kinds off by default ([`ringside_wire::kind::DEFAULT_EVENTS_MASK`])
/// that the agent asks for when a configuration can log their event or a
/// loaded Sigma rule reads it.
pub const OPT_IN: [(EventKind, Target); 2] = [
    (EventKind::ProcessAccess, Target::ProcessAccess),
    (EventKind::FileCloseModified, Target::FileCreateStreamHash),
];

/// [`OPT_IN`]'s kinds as a mask.
pub const OPT_IN_MASK: u32 = {
    let mut mask = 0;
    let mut i = 0;
    while i < OPT_IN.len() {
        mask |= OPT_IN[i].0.mask_bit();
        i += 1;
    }
    mask
};

/// The kinds the Sigma rules of `bundle` read (their logsources' kinds).
pub fn detection_mask(bundle: &ringside_content::Bundle) -> u32 {
    bundle
        .engine
        .rules()
        .map(|rule| match rule.logsource {
            Logsource::ProcessCreation => EventKind::ProcessCreate.mask_bit(),
            Logsource::ImageLoad | Logsource::DriverLoad => EventKind::ImageLoad.mask_bit(),
            Logsource::FileEvent => EventKind::FileCreate.mask_bit(),
            Logsource::FileDelete => EventKind::FileDelete.mask_bit(),
            Logsource::FileRename => EventKind::FileRename.mask_bit(),
            Logsource::RegistrySet => EventKind::RegistrySetValue.mask_bit(),
            Logsource::RegistryAdd | Logsource::RegistryDelete => EventKind::RegistryKey.mask_bit(),
            Logsource::RegistryRename => EventKind::RegistryRename.mask_bit(),
            Logsource::RegistryEvent => {
                EventKind::RegistrySetValue.mask_bit()
                    | EventKind::RegistryKey.mask_bit()
                    | EventKind::RegistryRename.mask_bit()
            }
            Logsource::ProcessAccess => EventKind::ProcessAccess.mask_bit(),
            Logsource::CreateRemoteThread => EventKind::RemoteThread.mask_bit(),
            Logsource::CreateStreamHash => EventKind::FileCloseModified.mask_bit(),
            Logsource::PipeCreated => EventKind::NamedPipe.mask_bit(),
        })
        .fold(0, |mask, bit| mask | bit)
}

/// The kinds a mask leaves out of [`ringside_wire::kind::DEFAULT_EVENTS_MASK`].
pub fn kinds_switched_off(mask: u32) -> Vec<EventKind> {
    EventKind::ALL
        .into_iter()
        .filter(|k| {
            ringside_wire::kind::DEFAULT_EVENTS_MASK & k.mask_bit() != 0 && mask & k.mask_bit() == 0
        })
        .collect()
}

/// Sysmon's `HashAlgorithms` as the enricher's set.
pub fn hash_set(algorithms: HashAlgorithms) -> HashSet {
    HashSet {
        sha1: algorithms.sha1,
        md5: algorithms.md5,
        sha256: algorithms.sha256,
        imphash: algorithms.imphash,
    }
}

/// Loads `path`, printing each ignored element's line to stderr (as
/// `config check` would) and a summary.
pub fn load_verbose(path: &Path) -> Result<Loaded, ConfigError> {
    let loaded = sysmon_config::load(path)?;
    eprint!("{}", loaded.report);
    Ok(loaded)
}

/// The running configuration, its updates and its counts.
#[derive(Debug)]
pub struct ConfigFilter {
    config: Arc<SysmonConfig>,
    scratch: Scratch,
    updates: Option<watch::ConfigUpdates>,
    notices: Vec<Notice>,
    rule_name: String,
    /// Events written / dropped by the configuration.
    pub logged: u64,
    pub dropped: u64,
    /// Set when a swapped-in configuration names other HashAlgorithms.
    hashes_changed: Option<HashAlgorithms>,
}

impl ConfigFilter {
    /// A filter running `loaded`, with a 1006 notice saying so.
    pub fn new(loaded: Loaded) -> ConfigFilter {
        let mut filter = ConfigFilter {
            config: Arc::new(loaded.config),
            scratch: Scratch::default(),
            updates: None,
            notices: Vec::new(),
            rule_name: String::new(),
            logged: 0,
            dropped: 0,
            hashes_changed: None,
        };
        filter.notices.push(activated(&filter.config, None));
        filter
    }

    /// Takes changed configurations from `updates` (see [`watch`]).
    pub fn with_updates(mut self, updates: watch::ConfigUpdates) -> ConfigFilter {
        self.updates = Some(updates);
        self
    }

    pub fn config(&self) -> &SysmonConfig {
        &self.config
    }

    /// The event mask the running configuration needs.
    pub fn event_mask(&self) -> u32 {
        event_mask(&self.config)
    }

    /// Once after a swap, the HashAlgorithms of a configuration that
    /// changed them.
    pub fn take_hashes_change(&mut self) -> Option<HashAlgorithms> {
        self.hashes_changed.take()
    }

    /// Whether `event` is written; a logged event gets its `RuleName`.
    pub fn apply(&mut self, event: &mut SysmonEvent) -> bool {
        let Some(decision) = self.config.decide(event, &mut self.scratch) else {
            return true;
        };
        if !decision.logged {
            self.dropped += 1;
            return false;
        }
        self.logged += 1;
        if let Some(name) = decision.rule_name() {
            self.rule_name.clear();
            self.rule_name.push_str(name);
            event.set_named("RuleName", &self.rule_name);
        }
        true
    }

    /// Swaps in a configuration the watcher delivered (between batches),
    /// or queues the 1005 notice of one it rejected.
    pub fn poll_updates(&mut self) {
        let Some(updates) = &self.updates else {
            return;
        };
        while let Some(update) = updates.try_next() {
            match update {
                Ok(loaded) => {
                    let previous = self.config.source.clone();
                    let notice = activated(&loaded.config, Some(previous));
                    if let Some(hashes) = loaded.config.hash_algorithms {
                        if self.config.hash_algorithms != Some(hashes) {
                            self.hashes_changed = Some(hashes);
                        }
                    }
                    self.config = Arc::new(loaded.config);
                    self.notices.push(notice);
                }
                Err(error) => self.notices.push(Notice::Rejected {
                    source: updates.path().to_owned(),
                    running: self.config.source.clone(),
                    reason: error.to_string(),
                }),
            }
        }
    }

    /// Notices to emit (1005 / 1006), oldest first.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }
}

fn activated(config: &SysmonConfig, previous: Option<PathBuf>) -> Notice {
    Notice::Activated {
        source: config.source.clone(),
        rules: config.filter_count(),
        files: 1,
        previous,
    }
}

#[cfg(test)]
mod tests;
