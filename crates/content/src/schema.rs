//! The schema of what ringside provides: per logsource, the exact fields the
//! sensor and agent emit, with Sysmon's names, in output order.
//!
//! This is the contract between the agent (which fills events) and the
//! content compiler (which rejects any rule naming a field not listed here).
//! A field is listed only if the driver's raw facts plus user-mode enrichment
//! can really produce it; see DESIGN.md, "What it observes".
//!
//! `RuleName` comes first, as in Sysmon's events: the name of the Sysmon
//! configuration filter that logged the event (`-` without one).
//!
//! Hashes: ringside emits Sysmon's single `Hashes` field
//! (`SHA256=..,MD5=..,IMPHASH=..`). It does *not* provide Sigma's split hash
//! fields (`Imphash`, `md5`, `sha1`, `sha256`) as virtual fields: the SigmaHQ
//! Windows rules for these logsources only use `Hashes|contains`, and a rule
//! naming a split field is rejected with a true reason rather than silently
//! matched against a field whose format we would have to guess.

use serde::ser::{Serialize, SerializeMap, Serializer};

/// The event types a Sigma rule may target (Sigma `logsource.category`, with
/// `product: windows`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Logsource {
    /// Sysmon event 1.
    ProcessCreation,
    /// Sysmon event 7.
    ImageLoad,
    /// Sysmon event 6 (DriverLoad): an image-load record whose
    /// `IMAGE_INFO.Properties` has the `SystemModeImage` bit.
    DriverLoad,
    /// Sysmon event 11.
    FileEvent,
    /// Sysmon events 23 (FileDelete, archived) and 26 (FileDeleteDetected).
    FileDelete,
    /// No Sysmon equivalent: ringside's own event id [`FILE_RENAME_EVENT_ID`].
    FileRename,
    /// Sysmon event 13 (RegistryEvent, Value Set), Sigma's `registry_set`.
    RegistrySet,
    /// Sysmon event 12 with `EventType` CreateKey, Sigma's `registry_add`.
    RegistryAdd,
    /// Sysmon event 12 with `EventType` DeleteKey or DeleteValue, Sigma's
    /// `registry_delete`.
    RegistryDelete,
    /// Sysmon event 14 (RegistryEvent, Key and Value Rename), Sigma's
    /// `registry_rename`.
    RegistryRename,
    /// Sigma's `registry_event`: Sysmon 12, 13 and 14 together. No event
    /// is of this logsource: its rules are evaluated on every registry
    /// event ([`Logsource::covered_by`]), over the union of their fields.
    RegistryEvent,
    /// Sysmon event 10 (ProcessAccess), Sigma's `process_access`.
    ProcessAccess,
    /// Sysmon event 8 (CreateRemoteThread), Sigma's `create_remote_thread`:
    /// a thread created in another process than its creator's.
    CreateRemoteThread,
    /// Sysmon event 15 (FileCreateStreamHash), Sigma's
    /// `create_stream_hash`: a named stream (`file:stream`) was written.
    CreateStreamHash,
    /// Sysmon events 17 (PipeEvent, Pipe Created: `EventType` CreatePipe)
    /// and 18 (PipeEvent, Pipe Connected: `EventType` ConnectPipe), both
    /// Sigma's `pipe_created`: one field table, the id told apart by
    /// `EventType` ([`Logsource::sysmon_event_id_of`]).
    PipeCreated,
}

/// Sysmon's event log provider (`System/Provider/@Name` of its events).
pub const SYSMON_PROVIDER: &str = "Microsoft-Windows-Sysmon";

/// Sigma's name for the event's provider ([`Logsource::provider`]).
pub const PROVIDER_FIELD: &str = "Provider_Name";

/// The event id ringside gives file renames. Sysmon has no rename event; the
/// id is chosen outside Sysmon's range (1..=29 today) so that a JSON consumer
/// keyed on Sysmon ids can never mistake it for a Sysmon event.
pub const FILE_RENAME_EVENT_ID: u16 = 1011;

/// One field the sensor provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDef {
    /// Sysmon's exact (case-sensitive) field name.
    pub name: &'static str,
    /// What the value looks like; matching is always on its string form.
    pub ty: FieldType,
}

/// The shape of a field's value. Every value is carried as a string (as
/// Sysmon renders it); the type tells the compiler which modifiers make sense.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// Free text: paths, command lines, names.
    String,
    /// A decimal integer, e.g. a process id.
    Integer,
    /// `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`-style GUID as Sysmon prints it.
    Guid,
    /// `YYYY-MM-DD hh:mm:ss.fff` (UTC).
    Timestamp,
    /// `SHA256=..,MD5=..,IMPHASH=..` (Sysmon's `Hashes` format).
    Hashes,
}

const fn f(name: &'static str, ty: FieldType) -> FieldDef {
    FieldDef { name, ty }
}

use FieldType::{Guid, Hashes, Integer, String as Str, Timestamp};

const PROCESS_CREATION: &[FieldDef] = &[
    f("RuleName", Str),
    f("UtcTime", Timestamp),
    f("ProcessGuid", Guid),
    f("ProcessId", Integer),
    f("Image", Str),
    f("FileVersion", Str),
    f("Description", Str),
    f("Product", Str),
    f("Company", Str),
    f("OriginalFileName", Str),
    f("CommandLine", Str),
    f("CurrentDirectory", Str),
    f("User", Str),
    // From the primary token's TOKEN_STATISTICS.AuthenticationId (the
    // driver copies the LUID; the agent formats both as Sysmon does).
    f("LogonGuid", Guid),
    f("LogonId", Str),
    f("IntegrityLevel", Str),
    f("Hashes", Hashes),
    f("ParentProcessGuid", Guid),
    f("ParentProcessId", Integer),
    f("ParentImage", Str),
    f("ParentCommandLine", Str),
    f("ParentUser", Str),
];

const IMAGE_LOAD: &[FieldDef] = &[
    f("RuleName", Str),
    f("UtcTime", Timestamp),
    f("ProcessGuid", Guid),
    f("ProcessId", Integer),
    f("Image", Str),
    f("ImageLoaded", Str),
    f("FileVersion", Str),
    f("Description", Str),
    f("Product", Str),
    f("Company", Str),
    f("OriginalFileName", Str),
    f("Hashes", Hashes),
    f("Signed", Str),
    f("Signature", Str),
    f("SignatureStatus", Str),
    f("User", Str),
];

// Sysmon 6 is RuleName, UtcTime, ImageLoaded, Hashes, Signed, Signature,
// SignatureStatus, in that order. `Signature` (the signer's display name,
// e.g. "Microsoft Windows") comes from the agent's Authenticode check of
// the file (agent/src/enrich/authenticode.rs), as in event 7.
const DRIVER_LOAD: &[FieldDef] = &[
    f("RuleName", Str),
    f("UtcTime", Timestamp),
    f("ImageLoaded", Str),
    f("Hashes", Hashes),
    f("Signed", Str),
    f("Signature", Str),
    f("SignatureStatus", Str),
];

const FILE_EVENT: &[FieldDef] = &[
    f("RuleName", Str),
    f("UtcTime", Timestamp),
    f("ProcessGuid", Guid),
    f("ProcessId", Integer),
    f("Image", Str),
    f("TargetFilename", Str),
    f("CreationUtcTime", Timestamp),
    f("User", Str),
];

const FILE_DELETE: &[FieldDef] = &[
    f("RuleName", Str),
    f("UtcTime", Timestamp),
    f("ProcessGuid", Guid),
    f("ProcessId", Integer),
    f("User", Str),
    f("Image", Str),
    f("TargetFilename", Str),
];

/// Sysmon event 5 (ProcessTerminate), which no Sigma logsource ringside
/// supports: listed here so the agent's output and the Sysmon configuration
/// check read one table.
pub const PROCESS_TERMINATE: &[FieldDef] = &[
    f("RuleName", Str),
    f("UtcTime", Timestamp),
    f("ProcessGuid", Guid),
    f("ProcessId", Integer),
    f("Image", Str),
    f("User", Str),
];

// The SigmaHQ file_rename rules name `SourceFilename` (old name) and
// `TargetFilename` (new name); the minifilter's set-information callback
// observes both.
const FILE_RENAME: &[FieldDef] = &[
    f("RuleName", Str),
    f("UtcTime", Timestamp),
    f("ProcessGuid", Guid),
    f("ProcessId", Integer),
    f("Image", Str),
    f("SourceFilename", Str),
    f("TargetFilename", Str),
    f("User", Str),
];

// Sysmon 13's fields in its order (SigmaHQ's registry_set regression
// samples). `TargetObject` is the key path as Sysmon writes it (`HKLM\...`,
// `HKU\<SID>\...`) then `\` and the value name (`(Default)` for the
// default value); `Details` renders the type and data (`DWORD (0x00000001)`,
// the string, `Binary Data`).
const REGISTRY_SET: &[FieldDef] = &[
    f("RuleName", Str),
    f("EventType", Str),
    f("UtcTime", Timestamp),
    f("ProcessGuid", Guid),
    f("ProcessId", Integer),
    f("Image", Str),
    f("TargetObject", Str),
    f("Details", Str),
    f("User", Str),
];

// Sysmon 12's fields (SigmaHQ's registry_delete regression samples):
// `TargetObject` is the key, or for a deleted value the key, `\` and the
// value's name.
const REGISTRY_OBJECT: &[FieldDef] = &[
    f("RuleName", Str),
    f("EventType", Str),
    f("UtcTime", Timestamp),
    f("ProcessGuid", Guid),
    f("ProcessId", Integer),
    f("Image", Str),
    f("TargetObject", Str),
    f("User", Str),
];

// Sysmon 14's fields (schema 4.90): `TargetObject` the key before the
// rename, `NewName` the key after it, both as Sysmon writes key paths.
const REGISTRY_RENAME: &[FieldDef] = &[
    f("RuleName", Str),
    f("EventType", Str),
    f("UtcTime", Timestamp),
    f("ProcessGuid", Guid),
    f("ProcessId", Integer),
    f("Image", Str),
    f("TargetObject", Str),
    f("NewName", Str),
    f("User", Str),
];

// registry_event: every field of 12, 13 and 14. A rule naming `Details`
// matches only value sets, as on Sysmon's own events.
const REGISTRY_EVENT: &[FieldDef] = &[
    f("RuleName", Str),
    f("EventType", Str),
    f("UtcTime", Timestamp),
    f("ProcessGuid", Guid),
    f("ProcessId", Integer),
    f("Image", Str),
    f("TargetObject", Str),
    f("Details", Str),
    f("NewName", Str),
    f("User", Str),
];

// Sysmon 10's fields in its order (SigmaHQ's process_access regression
// samples). `GrantedAccess` is the granted mask in lowercase hex with `0x`
// (`0x1fffff`, `0x1410`); `CallTrace` is the requesting thread's user-mode
// return addresses as `module+hexoffset` joined by `|`, `UNKNOWN(<16 hex
// digits>)` for an address in no known module; `SourceUser` and
// `TargetUser` are the two processes' users (`DOMAIN\name`).
const PROCESS_ACCESS: &[FieldDef] = &[
    f("RuleName", Str),
    f("UtcTime", Timestamp),
    f("SourceProcessGUID", Guid),
    f("SourceProcessId", Integer),
    f("SourceThreadId", Integer),
    f("SourceImage", Str),
    f("TargetProcessGUID", Guid),
    f("TargetProcessId", Integer),
    f("TargetImage", Str),
    f("GrantedAccess", Str),
    f("CallTrace", Str),
    f("SourceUser", Str),
    f("TargetUser", Str),
];

// Sysmon 8's fields in its order (Sysmon's schema, event 8; SigmaHQ has
// no regression sample of it). `StartAddress` is `0x` and 16 upper-case hex
// digits; `StartModule` is the image mapped at the start address in the
// target process (from the image loads the agent has seen) and
// `StartFunction` the export of that image whose address is exactly the
// start address; both are `-` when not known. `SourceUser` and
// `TargetUser` are the processes' users.
const CREATE_REMOTE_THREAD: &[FieldDef] = &[
    f("RuleName", Str),
    f("UtcTime", Timestamp),
    f("SourceProcessGuid", Guid),
    f("SourceProcessId", Integer),
    f("SourceImage", Str),
    f("TargetProcessGuid", Guid),
    f("TargetProcessId", Integer),
    f("TargetImage", Str),
    f("NewThreadId", Integer),
    f("StartAddress", Str),
    f("StartModule", Str),
    f("StartFunction", Str),
    f("SourceUser", Str),
    f("TargetUser", Str),
];

// Sysmon 15's fields in its order (schema 4.90). `TargetFilename` is the
// stream's full name (`C:\…\file.exe:Zone.Identifier`). `Hash` is the
// Sysmon `Hashes` text of the file the stream belongs to (its unnamed
// stream, as Sysmon's documentation says), `Contents` the named stream's
// own text when it is text and under 1 KB (a `Zone.Identifier`).
const CREATE_STREAM_HASH: &[FieldDef] = &[
    f("RuleName", Str),
    f("UtcTime", Timestamp),
    f("ProcessGuid", Guid),
    f("ProcessId", Integer),
    f("Image", Str),
    f("TargetFilename", Str),
    f("CreationUtcTime", Timestamp),
    f("Hash", Hashes),
    f("Contents", Str),
    f("User", Str),
];

// Sysmon 17's and 18's fields in Sysmon's order (schema 4.90, PipeEvent).
// `PipeName` is the pipe's name as the file system gives it, without the
// `\Device\NamedPipe` prefix (`\MSSE-1234-server`).
const PIPE_EVENT: &[FieldDef] = &[
    f("RuleName", Str),
    f("EventType", Str),
    f("UtcTime", Timestamp),
    f("ProcessGuid", Guid),
    f("ProcessId", Integer),
    f("PipeName", Str),
    f("Image", Str),
    f("User", Str),
];

/// Sysmon 18's id: a pipe connected (a [`Logsource::PipeCreated`] event
/// whose `EventType` is `ConnectPipe`).
pub const PIPE_CONNECTED_EVENT_ID: u16 = 18;

impl Logsource {
    /// Every logsource, in a fixed order.
    pub const ALL: [Logsource; 15] = [
        Logsource::ProcessCreation,
        Logsource::ImageLoad,
        Logsource::DriverLoad,
        Logsource::FileEvent,
        Logsource::FileDelete,
        Logsource::FileRename,
        Logsource::RegistrySet,
        Logsource::RegistryAdd,
        Logsource::RegistryDelete,
        Logsource::RegistryRename,
        Logsource::RegistryEvent,
        Logsource::ProcessAccess,
        Logsource::CreateRemoteThread,
        Logsource::CreateStreamHash,
        Logsource::PipeCreated,
    ];

    /// Sigma's `logsource.category` name.
    pub fn category(self) -> &'static str {
        match self {
            Logsource::ProcessCreation => "process_creation",
            Logsource::ImageLoad => "image_load",
            Logsource::DriverLoad => "driver_load",
            Logsource::FileEvent => "file_event",
            Logsource::FileDelete => "file_delete",
            Logsource::FileRename => "file_rename",
            Logsource::RegistrySet => "registry_set",
            Logsource::RegistryAdd => "registry_add",
            Logsource::RegistryDelete => "registry_delete",
            Logsource::RegistryRename => "registry_rename",
            Logsource::RegistryEvent => "registry_event",
            Logsource::ProcessAccess => "process_access",
            Logsource::CreateRemoteThread => "create_remote_thread",
            Logsource::CreateStreamHash => "create_stream_hash",
            Logsource::PipeCreated => "pipe_created",
        }
    }

    /// The logsource whose Sigma category is `category`.
    pub fn from_category(category: &str) -> Option<Logsource> {
        Logsource::ALL
            .into_iter()
            .find(|l| l.category() == category)
    }

    /// The logsource whose rules also see every event of this one:
    /// `registry_event` for each registry logsource.
    pub fn covered_by(self) -> Option<Logsource> {
        match self {
            Logsource::RegistrySet
            | Logsource::RegistryAdd
            | Logsource::RegistryDelete
            | Logsource::RegistryRename => Some(Logsource::RegistryEvent),
            _ => None,
        }
    }

    /// The event id ringside emits: Sysmon's (1, 6, 7, 11, 12, 13, 14,
    /// 23), or [`FILE_RENAME_EVENT_ID`] for file renames, which Sysmon does
    /// not have. `registry_event` emits nothing of its own; it is given
    /// 12, the first id its element covers in a Sysmon configuration.
    pub fn sysmon_event_id(self) -> u16 {
        match self {
            Logsource::ProcessCreation => 1,
            Logsource::ImageLoad => 7,
            Logsource::DriverLoad => 6,
            Logsource::FileEvent => 11,
            Logsource::FileDelete => 23,
            Logsource::FileRename => FILE_RENAME_EVENT_ID,
            Logsource::RegistrySet => 13,
            Logsource::RegistryAdd | Logsource::RegistryDelete | Logsource::RegistryEvent => 12,
            Logsource::RegistryRename => 14,
            Logsource::ProcessAccess => 10,
            Logsource::CreateRemoteThread => 8,
            Logsource::CreateStreamHash => 15,
            Logsource::PipeCreated => 17,
        }
    }

    /// The event id of one event of this logsource whose `EventType` field
    /// is `event_type`: [`Self::sysmon_event_id`], but 18 for a pipe
    /// connected (Sysmon gives its two pipe events one element and one
    /// field list, and Sigma one category).
    pub fn sysmon_event_id_of(self, event_type: Option<&str>) -> u16 {
        match (self, event_type) {
            (Logsource::PipeCreated, Some("ConnectPipe")) => PIPE_CONNECTED_EVENT_ID,
            (logsource, _) => logsource.sysmon_event_id(),
        }
    }

    /// The logsource of a Sysmon event: by its id, and for 12 (key
    /// creation and deletion) by its `EventType` too. 26
    /// (FileDeleteDetected) carries the same fields as 23 and maps to
    /// file_delete too.
    pub fn from_event(id: u64, event_type: Option<&str>) -> Option<Logsource> {
        match (id, event_type) {
            (12, Some("DeleteKey" | "DeleteValue")) => Some(Logsource::RegistryDelete),
            (12, _) => Some(Logsource::RegistryAdd),
            (id, _) => Logsource::from_event_id(id),
        }
    }

    /// The logsource of a Sysmon event id, for ids that have one (12 needs
    /// its `EventType`: [`Logsource::from_event`]).
    fn from_event_id(id: u64) -> Option<Logsource> {
        match id {
            1 => Some(Logsource::ProcessCreation),
            6 => Some(Logsource::DriverLoad),
            7 => Some(Logsource::ImageLoad),
            11 => Some(Logsource::FileEvent),
            23 | 26 => Some(Logsource::FileDelete),
            13 => Some(Logsource::RegistrySet),
            14 => Some(Logsource::RegistryRename),
            10 => Some(Logsource::ProcessAccess),
            8 => Some(Logsource::CreateRemoteThread),
            15 => Some(Logsource::CreateStreamHash),
            17 | 18 => Some(Logsource::PipeCreated),
            id if id == u64::from(FILE_RENAME_EVENT_ID) => Some(Logsource::FileRename),
            _ => None,
        }
    }

    /// The exact fields the sensor and agent provide, in output order.
    pub fn fields(self) -> &'static [FieldDef] {
        match self {
            Logsource::ProcessCreation => PROCESS_CREATION,
            Logsource::ImageLoad => IMAGE_LOAD,
            Logsource::DriverLoad => DRIVER_LOAD,
            Logsource::FileEvent => FILE_EVENT,
            Logsource::FileDelete => FILE_DELETE,
            Logsource::FileRename => FILE_RENAME,
            Logsource::RegistrySet => REGISTRY_SET,
            Logsource::RegistryAdd | Logsource::RegistryDelete => REGISTRY_OBJECT,
            Logsource::RegistryRename => REGISTRY_RENAME,
            Logsource::RegistryEvent => REGISTRY_EVENT,
            Logsource::ProcessAccess => PROCESS_ACCESS,
            Logsource::CreateRemoteThread => CREATE_REMOTE_THREAD,
            Logsource::CreateStreamHash => CREATE_STREAM_HASH,
            Logsource::PipeCreated => PIPE_EVENT,
        }
    }

    /// The event log provider of this logsource's events, which Sigma names
    /// `Provider_Name` (the `System/Provider/@Name` attribute, not a field
    /// of `EventData`): every event but ringside's own file rename is a
    /// Sysmon event. Rules use it to tell Sysmon's events from another
    /// provider's in one stream (SigmaHQ's direct-NtOpenProcess rule
    /// excludes Microsoft-Windows-Kernel-Audit-API-Calls, its conhost rule
    /// SystemTraceProvider-Process). The compiler evaluates a
    /// `Provider_Name` test against it once, when compiling: it is the same
    /// for every event of the logsource, so no event carries it.
    pub fn provider(self) -> Option<&'static str> {
        match self {
            Logsource::FileRename => None,
            _ => Some(SYSMON_PROVIDER),
        }
    }

    /// The index of `name` in [`Self::fields`]. Case-sensitive: Sigma field
    /// names are matched as Sysmon names, and `commandline` is not a field.
    pub fn field_index(self, name: &str) -> Option<usize> {
        self.fields().iter().position(|field| field.name == name)
    }
}

/// An event the engine evaluates; fields are addressed by index into
/// `logsource().fields()`.
pub trait EventFields {
    /// Which event type this is (selects the rules and the field list).
    fn logsource(&self) -> Logsource;
    /// The value of field `index`, or `None` when absent (or out of range).
    fn get(&self, index: usize) -> Option<&str>;
}

/// An event held as owned strings: replay, regression samples, tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedEvent {
    /// The event type.
    pub logsource: Logsource,
    /// One slot per `logsource.fields()` entry, same order.
    pub values: Vec<Option<String>>,
}

impl EventFields for OwnedEvent {
    fn logsource(&self) -> Logsource {
        self.logsource
    }

    fn get(&self, index: usize) -> Option<&str> {
        self.values.get(index).and_then(|v| v.as_deref())
    }
}

/// Why a JSON document could not become an [`OwnedEvent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventJsonError {
    /// No `Event.System.EventID` (or `EventID` at top level) number.
    MissingEventId,
    /// The event id is not one of the supported logsources.
    UnsupportedEventId(u64),
    /// No `Event.EventData` object.
    MissingEventData,
}

impl std::fmt::Display for EventJsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventJsonError::MissingEventId => {
                write!(
                    f,
                    "no Event.System.EventID number: not a Sysmon event rendered as JSON"
                )
            }
            EventJsonError::UnsupportedEventId(id) => write!(
                f,
                "event id {id} is not a supported logsource (supported: 1, 6, 7, 11, 12, 13, 14, 23, 26, {FILE_RENAME_EVENT_ID})"
            ),
            EventJsonError::MissingEventData => {
                write!(f, "no Event.EventData object: the event carries no fields")
            }
        }
    }
}

impl std::error::Error for EventJsonError {}

impl OwnedEvent {
    /// An event of `logsource` with every field absent.
    pub fn empty(logsource: Logsource) -> OwnedEvent {
        OwnedEvent {
            logsource,
            values: vec![None; logsource.fields().len()],
        }
    }

    /// Sets field `name` if the logsource provides it; returns whether it did.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> bool {
        match (self.logsource.field_index(name), self.values.len()) {
            (Some(index), len) if index < len => {
                if let Some(slot) = self.values.get_mut(index) {
                    *slot = Some(value.into());
                }
                true
            }
            _ => false,
        }
    }

    /// Builds an event from `fields` (an `EventData`-like JSON object) through
    /// the schema: fields the schema lists are kept (numbers and booleans in
    /// their JSON text form), all others (e.g. `CurrentDirectory`) are dropped,
    /// exactly as the sensor would never have them.
    pub fn from_event_data(
        logsource: Logsource,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> OwnedEvent {
        let mut event = OwnedEvent::empty(logsource);
        for (name, value) in fields {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                // Sysmon renders no nested or null field values; skip them.
                _ => continue,
            };
            event.set(name, text);
        }
        event
    }

    /// Builds an event from a Sysmon event rendered as JSON (the SigmaHQ
    /// regression sample shape: `{"Event": {"System": {"EventID": 1, ..},
    /// "EventData": {..}}}`).
    pub fn from_sysmon_json(json: &serde_json::Value) -> Result<OwnedEvent, EventJsonError> {
        let event = json.get("Event").unwrap_or(json);
        let id = event
            .get("System")
            .and_then(|s| s.get("EventID"))
            .or_else(|| event.get("EventID"))
            .and_then(event_id_number)
            .ok_or(EventJsonError::MissingEventId)?;
        let data = event
            .get("EventData")
            .and_then(|d| d.as_object())
            .ok_or(EventJsonError::MissingEventData)?;
        let event_type = data.get("EventType").and_then(|t| t.as_str());
        let logsource =
            Logsource::from_event(id, event_type).ok_or(EventJsonError::UnsupportedEventId(id))?;
        Ok(OwnedEvent::from_event_data(logsource, data))
    }
}

/// Sysmon JSON renders `EventID` as a number, or (from some exporters) as a
/// string, or as `{"#text": n}` when it carries attributes.
pub(crate) fn event_id_number(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Object(o) => o.get("#text").and_then(event_id_number),
        _ => None,
    }
}

/// Serialized as Sysmon-style JSON: `EventID` then the present fields by name.
impl Serialize for OwnedEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let present = self.values.iter().filter(|v| v.is_some()).count();
        let mut map = serializer.serialize_map(Some(present + 1))?;
        let event_type = self
            .logsource
            .field_index("EventType")
            .and_then(|i| self.values.get(i)?.as_deref());
        map.serialize_entry("EventID", &self.logsource.sysmon_event_id_of(event_type))?;
        for (def, value) in self.logsource.fields().iter().zip(&self.values) {
            if let Some(value) = value {
                map.serialize_entry(def.name, value)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_lists_have_unique_names_and_common_fields() {
        for logsource in Logsource::ALL {
            let fields = logsource.fields();
            for (i, field) in fields.iter().enumerate() {
                assert_eq!(
                    logsource.field_index(field.name),
                    Some(i),
                    "{logsource:?} {}",
                    field.name
                );
            }
            // A driver load happens in system space, not in a process:
            // Sysmon's 6 names no process, and neither does ringside's. A
            // remote thread has two processes, each named as Sysmon 8 does.
            let common: &[&str] = match logsource {
                Logsource::DriverLoad => &["UtcTime", "ImageLoaded", "Hashes"],
                // Two processes: each named as Sysmon's 10 names them.
                Logsource::ProcessAccess => &[
                    "UtcTime",
                    "SourceProcessGUID",
                    "SourceProcessId",
                    "SourceImage",
                    "SourceUser",
                    "TargetProcessGUID",
                    "TargetProcessId",
                    "TargetImage",
                    "TargetUser",
                ],
                Logsource::CreateRemoteThread => &[
                    "UtcTime",
                    "SourceProcessGuid",
                    "SourceProcessId",
                    "SourceImage",
                    "SourceUser",
                    "TargetProcessGuid",
                    "TargetProcessId",
                    "TargetImage",
                    "TargetUser",
                ],
                _ => &["UtcTime", "ProcessGuid", "ProcessId", "Image", "User"],
            };
            for &common in common {
                assert!(
                    logsource.field_index(common).is_some(),
                    "{logsource:?} lacks {common}"
                );
            }
            assert_eq!(
                Logsource::from_category(logsource.category()),
                Some(logsource)
            );
            let event_type = match logsource {
                Logsource::RegistryDelete => Some("DeleteKey"),
                _ => None,
            };
            if logsource != Logsource::RegistryEvent {
                assert_eq!(
                    Logsource::from_event(u64::from(logsource.sysmon_event_id()), event_type),
                    Some(logsource)
                );
            }
            // What registry_event covers, it can name.
            if let Some(cover) = logsource.covered_by() {
                for field in logsource.fields() {
                    assert!(cover.field_index(field.name).is_some(), "{}", field.name);
                }
            }
        }
        assert_eq!(Logsource::from_event(26, None), Some(Logsource::FileDelete));
        // Sysmon 17 and 18: one logsource, the id told apart by EventType.
        for (id, event_type) in [(17, "CreatePipe"), (18, "ConnectPipe")] {
            assert_eq!(
                Logsource::from_event(id, Some(event_type)),
                Some(Logsource::PipeCreated)
            );
            assert_eq!(
                Logsource::PipeCreated.sysmon_event_id_of(Some(event_type)),
                id as u16
            );
        }
        assert_eq!(
            Logsource::from_event(12, Some("DeleteValue")),
            Some(Logsource::RegistryDelete)
        );
    }

    #[test]
    fn field_index_is_case_sensitive_and_rejects_unprovided_fields() {
        let pc = Logsource::ProcessCreation;
        assert_eq!(pc.field_index("CommandLine"), Some(10));
        assert_eq!(pc.field_index("commandline"), None);
        // In Sysmon's order: CurrentDirectory (read by the live agent from
        // the process) after CommandLine; LogonGuid and LogonId (the
        // token's logon session, copied by the driver) after User.
        assert_eq!(pc.field_index("CurrentDirectory"), Some(11));
        assert_eq!(pc.field_index("User"), Some(12));
        assert_eq!(pc.field_index("LogonGuid"), Some(13));
        assert_eq!(pc.field_index("LogonId"), Some(14));
        assert_eq!(pc.field_index("IntegrityLevel"), Some(15));
        assert_eq!(pc.field_index("logonid"), None);
        for absent in ["TerminalSessionId", "Imphash"] {
            assert_eq!(pc.field_index(absent), None, "{absent}");
        }
        assert_eq!(Logsource::ImageLoad.field_index("Signature"), Some(13));
        let names: Vec<&str> = Logsource::DriverLoad
            .fields()
            .iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(
            names,
            [
                "RuleName",
                "UtcTime",
                "ImageLoaded",
                "Hashes",
                "Signed",
                "Signature",
                "SignatureStatus"
            ],
            "Sysmon 6's fields in Sysmon's order"
        );
    }

    #[test]
    fn sysmon_json_maps_through_schema_and_drops_unprovided_fields() {
        let json = serde_json::json!({"Event": {"System": {"EventID": 1},
            "EventData": {"Image": "C:\\x.exe", "ProcessId": 42, "TerminalSessionId": 1}}});
        let event = OwnedEvent::from_sysmon_json(&json).expect("valid sample");
        assert_eq!(event.logsource(), Logsource::ProcessCreation);
        assert_eq!(event.get(4), Some("C:\\x.exe"));
        assert_eq!(event.get(3), Some("42"));
        assert_eq!(event.values.iter().flatten().count(), 2);
        let bad = serde_json::json!({"Event": {"System": {"EventID": 4688}, "EventData": {}}});
        assert_eq!(
            OwnedEvent::from_sysmon_json(&bad),
            Err(EventJsonError::UnsupportedEventId(4688))
        );
        let text = serde_json::to_string(&event).expect("serializes");
        assert_eq!(
            text,
            r#"{"EventID":1,"ProcessId":"42","Image":"C:\\x.exe"}"#
        );
    }
}
