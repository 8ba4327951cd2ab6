//! Sysmon's event types as a configuration names them, the fields Sysmon
//! gives each (schema 4.90, `sysmon -s`), and which of ringside's events a
//! type filters ([`Target`]).
//!
//! Two tables meet here: Sysmon's field list says whether a filter names a
//! real field of the event type at all (a typo is rejected); ringside's
//! schema ([`crate::schema`], the table the Sigma compiler uses) says whether
//! the sensor provides it (a real Sysmon field ringside lacks is ignored,
//! with that reason).

use crate::schema::{FieldDef, Logsource, PROCESS_TERMINATE};

/// The events ringside emits that a Sysmon configuration filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// Sysmon 1.
    ProcessCreate,
    /// Sysmon 5.
    ProcessTerminate,
    /// Sysmon 6.
    DriverLoad,
    /// Sysmon 7.
    ImageLoad,
    /// Sysmon 11.
    FileCreate,
    /// Sysmon 23 (ringside's delete; Sysmon's 26 rules filter it too).
    FileDelete,
    /// Sysmon 12, 13 and 14: one `RegistryEvent` element filters the three
    /// (`EventType` tells them apart), over the union of their fields.
    Registry,
    /// Sysmon 10.
    ProcessAccess,
    /// Sysmon 8.
    CreateRemoteThread,
    /// Sysmon 15.
    FileCreateStreamHash,
    /// Sysmon 17 and 18: one `PipeEvent` element filters both (`EventType`
    /// tells them apart; one field list).
    Pipe,
}

impl Target {
    /// Every target, in a fixed order (the index of [`Target::slot`]).
    pub const ALL: [Target; 11] = [
        Target::ProcessCreate,
        Target::ProcessTerminate,
        Target::DriverLoad,
        Target::ImageLoad,
        Target::FileCreate,
        Target::FileDelete,
        Target::Registry,
        Target::ProcessAccess,
        Target::CreateRemoteThread,
        Target::FileCreateStreamHash,
        Target::Pipe,
    ];

    /// Position in [`Target::ALL`].
    pub fn slot(self) -> usize {
        self as usize
    }

    /// The fields ringside provides for this event, in output order.
    pub fn fields(self) -> &'static [FieldDef] {
        match self {
            Target::ProcessCreate => Logsource::ProcessCreation.fields(),
            Target::ProcessTerminate => PROCESS_TERMINATE,
            Target::DriverLoad => Logsource::DriverLoad.fields(),
            Target::ImageLoad => Logsource::ImageLoad.fields(),
            Target::FileCreate => Logsource::FileEvent.fields(),
            Target::FileDelete => Logsource::FileDelete.fields(),
            Target::Registry => Logsource::RegistryEvent.fields(),
            Target::ProcessAccess => Logsource::ProcessAccess.fields(),
            Target::CreateRemoteThread => Logsource::CreateRemoteThread.fields(),
            Target::FileCreateStreamHash => Logsource::CreateStreamHash.fields(),
            Target::Pipe => Logsource::PipeCreated.fields(),
        }
    }

    /// The event id ringside emits for it.
    pub fn event_id(self) -> u16 {
        match self {
            Target::ProcessCreate => 1,
            Target::ProcessTerminate => 5,
            Target::DriverLoad => 6,
            Target::ImageLoad => 7,
            Target::FileCreate => 11,
            Target::FileDelete => 23,
            Target::Registry => 12,
            Target::ProcessAccess => 10,
            Target::CreateRemoteThread => 8,
            Target::FileCreateStreamHash => 15,
            Target::Pipe => 17,
        }
    }

    /// The target of an emitted (or Sysmon-recorded) event id; 26 is a
    /// delete too.
    pub fn from_event_id(id: u64) -> Option<Target> {
        match id {
            1 => Some(Target::ProcessCreate),
            5 => Some(Target::ProcessTerminate),
            6 => Some(Target::DriverLoad),
            7 => Some(Target::ImageLoad),
            11 => Some(Target::FileCreate),
            23 | 26 => Some(Target::FileDelete),
            12..=14 => Some(Target::Registry),
            10 => Some(Target::ProcessAccess),
            8 => Some(Target::CreateRemoteThread),
            15 => Some(Target::FileCreateStreamHash),
            17 | 18 => Some(Target::Pipe),
            _ => None,
        }
    }

    /// What Sysmon does with an event type that has no rules at all:
    /// process create, process terminate, driver load and remote threads
    /// are logged; image loads, file creates and file deletes are not.
    /// (Sysmon started with no configuration writes events 1, 5, 6 and 8
    /// among others, and needs `-l` for 7; a configuration with no
    /// `DriverLoad` or `CreateRemoteThread` element keeps that default.)
    pub fn logged_without_rules(self) -> bool {
        matches!(
            self,
            Target::ProcessCreate
                | Target::ProcessTerminate
                | Target::DriverLoad
                | Target::CreateRemoteThread
        )
    }

    /// The Sysmon event types whose rules decide this event, in the order
    /// they are asked: a delete is logged if FileDelete's rules log it, or
    /// else if FileDeleteDetected's do (ringside archives nothing, so the
    /// two describe the same event).
    pub fn sysmon_types(self) -> &'static [&'static SysmonType] {
        match self {
            Target::ProcessCreate => &[&PROCESS_CREATE],
            Target::ProcessTerminate => &[&PROCESS_TERMINATE_TYPE],
            Target::DriverLoad => &[&DRIVER_LOAD],
            Target::ImageLoad => &[&IMAGE_LOAD],
            Target::FileCreate => &[&FILE_CREATE],
            Target::FileDelete => &[&FILE_DELETE, &FILE_DELETE_DETECTED],
            Target::Registry => &[&REGISTRY_EVENT],
            Target::ProcessAccess => &[&PROCESS_ACCESS],
            Target::CreateRemoteThread => &[&CREATE_REMOTE_THREAD],
            Target::FileCreateStreamHash => &[&FILE_CREATE_STREAM_HASH],
            Target::Pipe => &[&PIPE_EVENT],
        }
    }
}

/// One event element a configuration may contain.
#[derive(Debug, PartialEq, Eq)]
pub struct SysmonType {
    /// The element name, e.g. `ProcessCreate`.
    pub name: &'static str,
    /// Sysmon's event id.
    pub id: u16,
    /// Sysmon's fields for it (only listed for the types ringside applies:
    /// the others are ignored whole, fields unchecked).
    pub fields: &'static [&'static str],
    /// The ringside event it filters, if ringside produces it.
    pub target: Option<Target>,
}

impl SysmonType {
    /// The type an element name denotes (case-sensitive, as Sysmon's schema).
    pub fn by_name(name: &str) -> Option<&'static SysmonType> {
        ALL_TYPES.iter().copied().find(|t| t.name == name)
    }

    /// Position in [`ALL_TYPES`] (rule sets are kept per type).
    pub fn slot(&self) -> usize {
        ALL_TYPES.iter().position(|t| t.id == self.id).unwrap_or(0)
    }
}

const PROCESS_CREATE: SysmonType = SysmonType {
    name: "ProcessCreate",
    id: 1,
    fields: &[
        "UtcTime",
        "ProcessGuid",
        "ProcessId",
        "Image",
        "FileVersion",
        "Description",
        "Product",
        "Company",
        "OriginalFileName",
        "CommandLine",
        "CurrentDirectory",
        "User",
        "LogonGuid",
        "LogonId",
        "TerminalSessionId",
        "IntegrityLevel",
        "Hashes",
        "ParentProcessGuid",
        "ParentProcessId",
        "ParentImage",
        "ParentCommandLine",
        "ParentUser",
    ],
    target: Some(Target::ProcessCreate),
};

const PROCESS_TERMINATE_TYPE: SysmonType = SysmonType {
    name: "ProcessTerminate",
    id: 5,
    fields: &["UtcTime", "ProcessGuid", "ProcessId", "Image", "User"],
    target: Some(Target::ProcessTerminate),
};

const DRIVER_LOAD: SysmonType = SysmonType {
    name: "DriverLoad",
    id: 6,
    fields: &[
        "UtcTime",
        "ImageLoaded",
        "Hashes",
        "Signed",
        "Signature",
        "SignatureStatus",
    ],
    target: Some(Target::DriverLoad),
};

const IMAGE_LOAD: SysmonType = SysmonType {
    name: "ImageLoad",
    id: 7,
    fields: &[
        "UtcTime",
        "ProcessGuid",
        "ProcessId",
        "Image",
        "ImageLoaded",
        "FileVersion",
        "Description",
        "Product",
        "Company",
        "OriginalFileName",
        "Hashes",
        "Signed",
        "Signature",
        "SignatureStatus",
        "User",
    ],
    target: Some(Target::ImageLoad),
};

const FILE_CREATE: SysmonType = SysmonType {
    name: "FileCreate",
    id: 11,
    fields: &[
        "UtcTime",
        "ProcessGuid",
        "ProcessId",
        "Image",
        "TargetFilename",
        "CreationUtcTime",
        "User",
    ],
    target: Some(Target::FileCreate),
};

// Schema 4.90's RegistryEvent fields: those of 12, 13 (Details) and 14
// (NewName) together.
const REGISTRY_EVENT: SysmonType = SysmonType {
    name: "RegistryEvent",
    id: 12,
    fields: &[
        "EventType",
        "UtcTime",
        "ProcessGuid",
        "ProcessId",
        "Image",
        "TargetObject",
        "Details",
        "NewName",
        "User",
    ],
    target: Some(Target::Registry),
};

const FILE_DELETE: SysmonType = SysmonType {
    name: "FileDelete",
    id: 23,
    fields: &[
        "UtcTime",
        "ProcessGuid",
        "ProcessId",
        "User",
        "Image",
        "TargetFilename",
        "Hashes",
        "IsExecutable",
        "Archived",
    ],
    target: Some(Target::FileDelete),
};

const FILE_DELETE_DETECTED: SysmonType = SysmonType {
    name: "FileDeleteDetected",
    id: 26,
    fields: &[
        "UtcTime",
        "ProcessGuid",
        "ProcessId",
        "User",
        "Image",
        "TargetFilename",
        "Hashes",
        "IsExecutable",
    ],
    target: Some(Target::FileDelete),
};

const PROCESS_ACCESS: SysmonType = SysmonType {
    name: "ProcessAccess",
    id: 10,
    fields: &[
        "UtcTime",
        "SourceProcessGUID",
        "SourceProcessId",
        "SourceThreadId",
        "SourceImage",
        "TargetProcessGUID",
        "TargetProcessId",
        "TargetImage",
        "GrantedAccess",
        "CallTrace",
        "SourceUser",
        "TargetUser",
    ],
    target: Some(Target::ProcessAccess),
};

const CREATE_REMOTE_THREAD: SysmonType = SysmonType {
    name: "CreateRemoteThread",
    id: 8,
    fields: &[
        "UtcTime",
        "SourceProcessGuid",
        "SourceProcessId",
        "SourceImage",
        "TargetProcessGuid",
        "TargetProcessId",
        "TargetImage",
        "NewThreadId",
        "StartAddress",
        "StartModule",
        "StartFunction",
        "SourceUser",
        "TargetUser",
    ],
    target: Some(Target::CreateRemoteThread),
};

const FILE_CREATE_STREAM_HASH: SysmonType = SysmonType {
    name: "FileCreateStreamHash",
    id: 15,
    fields: &[
        "UtcTime",
        "ProcessGuid",
        "ProcessId",
        "Image",
        "TargetFilename",
        "CreationUtcTime",
        "Hash",
        "Contents",
        "User",
    ],
    target: Some(Target::FileCreateStreamHash),
};

// Schema 4.90's PipeEvent fields (17 and 18 have the same).
const PIPE_EVENT: SysmonType = SysmonType {
    name: "PipeEvent",
    id: 17,
    fields: &[
        "EventType",
        "UtcTime",
        "ProcessGuid",
        "ProcessId",
        "PipeName",
        "Image",
        "User",
    ],
    target: Some(Target::Pipe),
};

/// An event type ringside does not produce: accepted, ignored whole.
const fn unproduced(name: &'static str, id: u16) -> SysmonType {
    SysmonType {
        name,
        id,
        fields: &[],
        target: None,
    }
}

/// Every event element of schema 4.90. `RegistryEvent` covers 12–14,
/// `PipeEvent` 17–18, `WmiEvent` 19–21 (the first id is kept).
pub const ALL_TYPES: &[&SysmonType] = &[
    &PROCESS_CREATE,
    &unproduced("FileCreateTime", 2),
    &unproduced("NetworkConnect", 3),
    &PROCESS_TERMINATE_TYPE,
    &DRIVER_LOAD,
    &IMAGE_LOAD,
    &CREATE_REMOTE_THREAD,
    &unproduced("RawAccessRead", 9),
    &PROCESS_ACCESS,
    &FILE_CREATE,
    &REGISTRY_EVENT,
    &FILE_CREATE_STREAM_HASH,
    &PIPE_EVENT,
    &unproduced("WmiEvent", 19),
    &unproduced("DnsQuery", 22),
    &FILE_DELETE,
    &unproduced("ClipboardChange", 24),
    &unproduced("ProcessTampering", 25),
    &FILE_DELETE_DETECTED,
    &unproduced("FileBlockExecutable", 27),
    &unproduced("FileBlockShredding", 28),
    &unproduced("FileExecutableDetected", 29),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field ringside provides for a target (but `RuleName`, which
    /// Sysmon writes and no filter names) is a field Sysmon's type has: the
    /// two tables agree, so a provided field is never rejected as unknown.
    #[test]
    fn ringside_fields_are_sysmon_fields() {
        for target in Target::ALL {
            for sysmon in target.sysmon_types() {
                assert_eq!(sysmon.target, Some(target));
                for field in target.fields().iter().filter(|f| f.name != "RuleName") {
                    assert!(
                        sysmon.fields.contains(&field.name),
                        "{} lacks {}",
                        sysmon.name,
                        field.name
                    );
                }
            }
            assert_eq!(
                Target::from_event_id(u64::from(target.event_id())),
                Some(target)
            );
        }
        for (slot, t) in ALL_TYPES.iter().enumerate() {
            assert_eq!(t.slot(), slot, "{} has a unique id", t.name);
        }
    }
}
