//! The events the agent emits: Sysmon event ids and field names, taken from
//! the content crate's schema (one table for output and rule compiler, so the
//! two cannot drift), plus the few events the schema does not cover.
//!
//! Event ids:
//! - Sysmon's, via [`Logsource::sysmon_event_id`]: 1 ProcessCreate,
//!   6 DriverLoad, 7 ImageLoad, 11 FileCreate, 23 FileDelete (the schema's choice; ringside
//!   does not archive deleted files, so Sysmon's 26 "FileDeleteDetected" would
//!   describe it equally well), and ringside's 1011 FileRename.
//! - 5 ProcessTerminate: Sysmon's id, not a Sigma logsource ringside
//!   supports; its fields are in the content schema ([`PROCESS_TERMINATE`]).
//! - ringside's own, 1000..=1099 (outside Sysmon's 1..=255 so no Sysmon
//!   consumer can confuse them): 1001 EventsLost, 1002 SequenceGap,
//!   1003 InputError, 1004 SensorStats, 1005 ContentRejected,
//!   1006 ContentActivated, 1007 DeliveryDropped.
//!
//! An event is one reusable text buffer plus a span per field, so building
//! one does not allocate once the buffer has grown.

use ringside_content::schema::{EventFields, FieldDef, FieldType, Logsource};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// Sysmon event 5 (ProcessTerminate): its fields in Sysmon's order, from
/// the content schema (the Sysmon configuration check reads the same table).
pub use ringside_content::schema::PROCESS_TERMINATE;

/// The JSON type of a count that can exceed 2^53 (the driver's u64
/// counters and sequence numbers, as a driver or a replay file gives them):
/// a string of decimal digits, always, since a JSON number past 2^53 loses
/// precision in most readers. Fields typed [`FieldType::Integer`] are
/// always JSON numbers (null when unknown).
const WIDE: FieldType = FieldType::String;

/// ringside 1001: the driver dropped events (from a `Lost` record). Counts
/// are the drops since the previous `Lost` record, per event kind (strings:
/// [`WIDE`]).
pub const EVENTS_LOST: &[FieldDef] = &[
    field("UtcTime", FieldType::Timestamp),
    field("Dropped", WIDE),
    field("DroppedProcessCreate", WIDE),
    field("DroppedProcessExit", WIDE),
    field("DroppedImageLoad", WIDE),
    field("DroppedFileCreate", WIDE),
    field("DroppedFileWrite", WIDE),
    field("DroppedFileRename", WIDE),
    field("DroppedFileDelete", WIDE),
    field("DroppedFileCloseModified", WIDE),
    field("DroppedRegistrySetValue", WIDE),
    field("DroppedRegistryKey", WIDE),
    field("DroppedRegistryRename", WIDE),
    field("DroppedProcessAccess", WIDE),
    field("DroppedRemoteThread", WIDE),
    field("DroppedNamedPipe", WIDE),
];
// One `Dropped<Kind>` per event kind, in counter-index order.
const _: () = assert!(EVENTS_LOST.len() == 2 + ringside_wire::EVENT_KIND_COUNT);

/// ringside 1002: sequence numbers jumped — records the driver delivered
/// never reached this agent (or the replay file lacks them). Sequence
/// numbers are u64: strings ([`WIDE`]).
pub const SEQUENCE_GAP: &[FieldDef] = &[
    field("UtcTime", FieldType::Timestamp),
    field("ExpectedSeq", WIDE),
    field("ReceivedSeq", WIDE),
    field("Missing", WIDE),
];

/// ringside 1003: a frame or record could not be read; where and why.
pub const INPUT_ERROR: &[FieldDef] = &[
    field("UtcTime", FieldType::Timestamp),
    field("Source", FieldType::String),
    field("Offset", FieldType::Integer),
    field("Class", FieldType::String),
    field("Message", FieldType::String),
];

/// ringside 1004: the driver's counters (a Stats frame or STATS IOCTL;
/// strings, [`WIDE`]) and whether `produced == delivered + dropped` holds.
pub const SENSOR_STATS: &[FieldDef] = &[
    field("UtcTime", FieldType::Timestamp),
    field("Produced", WIDE),
    field("Delivered", WIDE),
    field("Dropped", WIDE),
    field("InRing", WIDE),
    field("Balanced", FieldType::String),
    field("PerKind", FieldType::String),
    // What the agent did with the records it received (all kinds, since
    // it started): each wrote a line or is counted as having none.
    field("Received", FieldType::Integer),
    field("Written", FieldType::Integer),
    field("Unmapped", FieldType::Integer),
    // `kind=received/written/unmapped,…`.
    field("AgentPerKind", FieldType::String),
    // The driver's counters against the agent's view (`crosscheck`):
    // "true", "partial" (consistent as far as could be checked) or
    // "VIOLATED: …" naming the first disagreement.
    field("Accounted", FieldType::String),
    field("DecodeErrors", FieldType::Integer),
    // The agent's own bounded state: processes evicted to stay within the
    // process table's entries and bytes, volume mappings not kept.
    field("ProcessesEvicted", FieldType::Integer),
    field("VolumesDropped", FieldType::Integer),
    // New driver lifetimes seen across reconnects (driver stopped and
    // started, or replaced): windows in which nothing was observed.
    field("DriverRestarts", FieldType::Integer),
    // Enrichment (live: on a worker thread): events that went out without
    // a lookup that was not finished, and lookups the full queue refused.
    // Neither drops an event.
    field("EnrichDeferred", FieldType::Integer),
    field("EnrichOverflow", FieldType::Integer),
    // Per network sink (`; `-separated): produced, sent, acknowledged,
    // spooled, dropped, resent, damaged spool segments and connection state.
    field("Sinks", FieldType::String),
];

/// ringside 1007: a network sink dropped messages because neither its
/// memory queue nor its spool had room (the 1001 of delivery). Sent ahead
/// of the next message that fits, so the collector can account for every
/// `Seq`: `Dropped` since the last report, `FirstSeq`..=`LastSeq` the
/// sequence numbers among them (alerts have none).
pub const DELIVERY_DROPPED: &[FieldDef] = &[
    field("UtcTime", FieldType::Timestamp),
    field("Sink", FieldType::String),
    field("Dropped", WIDE),
    field("DroppedTotal", WIDE),
    field("FirstSeq", WIDE),
    field("LastSeq", WIDE),
];

/// ringside 1005: detection content was refused or rolled back; the
/// running bundle (`Running`) stays in force. `Reason` says what and where.
pub const CONTENT_REJECTED: &[FieldDef] = &[
    field("UtcTime", FieldType::Timestamp),
    field("Source", FieldType::String),
    field("Running", FieldType::String),
    field("Reason", FieldType::String),
];

/// ringside 1006: a bundle compiled and now runs (`Rules` rules from `Files`
/// files); `Previous` is the bundle it replaced, if any.
pub const CONTENT_ACTIVATED: &[FieldDef] = &[
    field("UtcTime", FieldType::Timestamp),
    field("Source", FieldType::String),
    field("Rules", FieldType::Integer),
    field("Files", FieldType::Integer),
    field("Previous", FieldType::String),
];

const fn field(name: &'static str, ty: FieldType) -> FieldDef {
    FieldDef { name, ty }
}

/// What an emitted event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// An event Sigma rules can target (schema-defined fields).
    Sigma(Logsource),
    ProcessTerminate,
    EventsLost,
    SequenceGap,
    InputError,
    SensorStats,
    ContentRejected,
    ContentActivated,
    DeliveryDropped,
}

impl EventType {
    /// Every event type, for building per-type tables.
    pub const ALL: [EventType; 22] = [
        EventType::Sigma(Logsource::ProcessCreation),
        EventType::Sigma(Logsource::ImageLoad),
        EventType::Sigma(Logsource::DriverLoad),
        EventType::Sigma(Logsource::FileEvent),
        EventType::Sigma(Logsource::FileDelete),
        EventType::Sigma(Logsource::FileRename),
        EventType::Sigma(Logsource::RegistrySet),
        EventType::Sigma(Logsource::RegistryAdd),
        EventType::Sigma(Logsource::RegistryDelete),
        EventType::Sigma(Logsource::RegistryRename),
        EventType::Sigma(Logsource::ProcessAccess),
        EventType::Sigma(Logsource::CreateRemoteThread),
        EventType::Sigma(Logsource::CreateStreamHash),
        EventType::Sigma(Logsource::PipeCreated),
        EventType::ProcessTerminate,
        EventType::EventsLost,
        EventType::SequenceGap,
        EventType::InputError,
        EventType::SensorStats,
        EventType::ContentRejected,
        EventType::ContentActivated,
        EventType::DeliveryDropped,
    ];

    /// The `EventID` emitted.
    pub fn event_id(self) -> u16 {
        match self {
            EventType::Sigma(logsource) => logsource.sysmon_event_id(),
            EventType::ProcessTerminate => 5,
            EventType::EventsLost => 1001,
            EventType::SequenceGap => 1002,
            EventType::InputError => 1003,
            EventType::SensorStats => 1004,
            EventType::ContentRejected => 1005,
            EventType::ContentActivated => 1006,
            EventType::DeliveryDropped => 1007,
        }
    }

    /// Fields in output order.
    pub fn fields(self) -> &'static [FieldDef] {
        match self {
            EventType::Sigma(logsource) => logsource.fields(),
            EventType::ProcessTerminate => PROCESS_TERMINATE,
            EventType::EventsLost => EVENTS_LOST,
            EventType::SequenceGap => SEQUENCE_GAP,
            EventType::InputError => INPUT_ERROR,
            EventType::SensorStats => SENSOR_STATS,
            EventType::ContentRejected => CONTENT_REJECTED,
            EventType::ContentActivated => CONTENT_ACTIVATED,
            EventType::DeliveryDropped => DELIVERY_DROPPED,
        }
    }

    /// Index of `name` in [`Self::fields`].
    pub fn field_index(self, name: &str) -> Option<usize> {
        self.fields().iter().position(|f| f.name == name)
    }

    fn slot(self) -> usize {
        EventType::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// Fields the pipeline fills by name. [`Layout`] resolves each once per event
/// type against the field tables, so filling an event does no string search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Name {
    RuleName,
    UtcTime,
    ProcessGuid,
    ProcessId,
    Image,
    FileVersion,
    Description,
    Product,
    Company,
    OriginalFileName,
    CommandLine,
    CurrentDirectory,
    User,
    LogonGuid,
    LogonId,
    IntegrityLevel,
    Hashes,
    ParentProcessGuid,
    ParentProcessId,
    ParentImage,
    ParentCommandLine,
    ParentUser,
    ImageLoaded,
    Signed,
    Signature,
    SignatureStatus,
    TargetFilename,
    SourceFilename,
    CreationUtcTime,
    EventType,
    TargetObject,
    Details,
    NewName,
    SourceProcessGuid,
    SourceProcessId,
    SourceThreadId,
    SourceImage,
    TargetProcessGuid,
    TargetProcessId,
    TargetImage,
    GrantedAccess,
    CallTrace,
    NewThreadId,
    StartAddress,
    StartModule,
    StartFunction,
    SourceUser,
    TargetUser,
    Hash,
    Contents,
    PipeName,
}

impl Name {
    /// Every name, in discriminant order.
    pub const ALL: [Name; 51] = [
        Name::RuleName,
        Name::UtcTime,
        Name::ProcessGuid,
        Name::ProcessId,
        Name::Image,
        Name::FileVersion,
        Name::Description,
        Name::Product,
        Name::Company,
        Name::OriginalFileName,
        Name::CommandLine,
        Name::CurrentDirectory,
        Name::User,
        Name::LogonGuid,
        Name::LogonId,
        Name::IntegrityLevel,
        Name::Hashes,
        Name::ParentProcessGuid,
        Name::ParentProcessId,
        Name::ParentImage,
        Name::ParentCommandLine,
        Name::ParentUser,
        Name::ImageLoaded,
        Name::Signed,
        Name::Signature,
        Name::SignatureStatus,
        Name::TargetFilename,
        Name::SourceFilename,
        Name::CreationUtcTime,
        Name::EventType,
        Name::TargetObject,
        Name::Details,
        Name::NewName,
        Name::SourceProcessGuid,
        Name::SourceProcessId,
        Name::SourceThreadId,
        Name::SourceImage,
        Name::TargetProcessGuid,
        Name::TargetProcessId,
        Name::TargetImage,
        Name::GrantedAccess,
        Name::CallTrace,
        Name::NewThreadId,
        Name::StartAddress,
        Name::StartModule,
        Name::StartFunction,
        Name::SourceUser,
        Name::TargetUser,
        Name::Hash,
        Name::Contents,
        Name::PipeName,
    ];

    /// Sysmon's other spelling of the name: event 10 writes
    /// `SourceProcessGUID` and `TargetProcessGUID`, event 8
    /// `SourceProcessGuid` and `TargetProcessGuid`. Looked up when an event
    /// type has no field of the [`Name::as_str`] spelling.
    pub fn alias(self) -> Option<&'static str> {
        match self {
            Name::SourceProcessGuid => Some("SourceProcessGuid"),
            Name::TargetProcessGuid => Some("TargetProcessGuid"),
            _ => None,
        }
    }

    /// Sysmon's field name.
    pub fn as_str(self) -> &'static str {
        match self {
            Name::RuleName => "RuleName",
            Name::UtcTime => "UtcTime",
            Name::ProcessGuid => "ProcessGuid",
            Name::ProcessId => "ProcessId",
            Name::Image => "Image",
            Name::FileVersion => "FileVersion",
            Name::Description => "Description",
            Name::Product => "Product",
            Name::Company => "Company",
            Name::OriginalFileName => "OriginalFileName",
            Name::CommandLine => "CommandLine",
            Name::CurrentDirectory => "CurrentDirectory",
            Name::User => "User",
            Name::LogonGuid => "LogonGuid",
            Name::LogonId => "LogonId",
            Name::IntegrityLevel => "IntegrityLevel",
            Name::Hashes => "Hashes",
            Name::ParentProcessGuid => "ParentProcessGuid",
            Name::ParentProcessId => "ParentProcessId",
            Name::ParentImage => "ParentImage",
            Name::ParentCommandLine => "ParentCommandLine",
            Name::ParentUser => "ParentUser",
            Name::ImageLoaded => "ImageLoaded",
            Name::Signed => "Signed",
            Name::Signature => "Signature",
            Name::SignatureStatus => "SignatureStatus",
            Name::TargetFilename => "TargetFilename",
            Name::SourceFilename => "SourceFilename",
            Name::CreationUtcTime => "CreationUtcTime",
            Name::EventType => "EventType",
            Name::TargetObject => "TargetObject",
            Name::Details => "Details",
            Name::NewName => "NewName",
            Name::SourceProcessGuid => "SourceProcessGUID",
            Name::SourceProcessId => "SourceProcessId",
            Name::SourceThreadId => "SourceThreadId",
            Name::SourceImage => "SourceImage",
            Name::TargetProcessGuid => "TargetProcessGUID",
            Name::TargetProcessId => "TargetProcessId",
            Name::TargetImage => "TargetImage",
            Name::GrantedAccess => "GrantedAccess",
            Name::CallTrace => "CallTrace",
            Name::NewThreadId => "NewThreadId",
            Name::StartAddress => "StartAddress",
            Name::StartModule => "StartModule",
            Name::StartFunction => "StartFunction",
            Name::SourceUser => "SourceUser",
            Name::TargetUser => "TargetUser",
            Name::Hash => "Hash",
            Name::Contents => "Contents",
            Name::PipeName => "PipeName",
        }
    }
}

/// Per event type, the field index of each [`Name`] (or none: the schema
/// does not list it for that type, and the value is not emitted).
#[derive(Clone, Debug)]
pub struct Layout {
    index: [[Option<u8>; Name::ALL.len()]; EventType::ALL.len()],
}

impl Default for Layout {
    fn default() -> Self {
        let mut index = [[None; Name::ALL.len()]; EventType::ALL.len()];
        for (t, ty) in EventType::ALL.iter().enumerate() {
            for (n, name) in Name::ALL.iter().enumerate() {
                index[t][n] = ty
                    .field_index(name.as_str())
                    .or_else(|| name.alias().and_then(|alias| ty.field_index(alias)))
                    .and_then(|i| u8::try_from(i).ok());
            }
        }
        Layout { index }
    }
}

impl Layout {
    /// Field index of `name` in events of type `ty`.
    pub fn get(&self, ty: EventType, name: Name) -> Option<usize> {
        self.index
            .get(ty.slot())
            .and_then(|row| row.get(name as usize))
            .copied()
            .flatten()
            .map(usize::from)
    }
}

/// One event: type, sensor sequence number, and field values as spans of one
/// text buffer.
#[derive(Clone, Debug)]
pub struct SysmonEvent {
    ty: EventType,
    /// The record's sequence number, when the event comes from one.
    pub seq: Option<u64>,
    text: String,
    spans: Vec<Option<(u32, u32)>>,
}

impl Default for SysmonEvent {
    fn default() -> Self {
        SysmonEvent::new(EventType::InputError)
    }
}

impl SysmonEvent {
    /// An empty event of type `ty`.
    pub fn new(ty: EventType) -> Self {
        let mut event = SysmonEvent {
            ty,
            seq: None,
            text: String::with_capacity(512),
            spans: Vec::new(),
        };
        event.reset(ty, None);
        event
    }

    /// Clears the event for reuse as type `ty`, keeping its buffers.
    pub fn reset(&mut self, ty: EventType, seq: Option<u64>) {
        self.ty = ty;
        self.seq = seq;
        self.text.clear();
        self.spans.clear();
        self.spans.resize(ty.fields().len(), None);
    }

    /// The event type.
    pub fn event_type(&self) -> EventType {
        self.ty
    }

    /// The `EventID` written: the type's, but for a pipe event the one its
    /// `EventType` names (17 CreatePipe, 18 ConnectPipe).
    pub fn event_id(&self) -> u16 {
        match self.ty {
            EventType::Sigma(logsource @ Logsource::PipeCreated) => {
                logsource.sysmon_event_id_of(self.get_named("EventType"))
            }
            ty => ty.event_id(),
        }
    }

    /// The driver's sequence number of the record behind this event.
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }

    /// Sets field `index` to whatever `fill` appends to the buffer. Out of
    /// range indices and buffers beyond 4 GiB leave the field unset.
    pub fn set_with(&mut self, index: usize, fill: impl FnOnce(&mut String)) {
        let start = self.text.len();
        fill(&mut self.text);
        let end = self.text.len();
        match (
            self.spans.get_mut(index),
            u32::try_from(start),
            u32::try_from(end),
        ) {
            (Some(slot), Ok(start), Ok(end)) => *slot = Some((start, end)),
            _ => self.text.truncate(start),
        }
    }

    /// Sets field `index` to `value`.
    pub fn set(&mut self, index: usize, value: &str) {
        self.set_with(index, |out| out.push_str(value));
    }

    /// Sets the field named `name`, if this type has it (slow path: tests
    /// and rare events).
    pub fn set_named(&mut self, name: &str, value: &str) -> bool {
        match self.ty.field_index(name) {
            Some(index) => {
                self.set(index, value);
                true
            }
            None => false,
        }
    }

    /// The value of the field named `name`.
    pub fn get_named(&self, name: &str) -> Option<&str> {
        self.ty.field_index(name).and_then(|i| self.value(i))
    }

    /// The value of field `index`, if set.
    pub fn value(&self, index: usize) -> Option<&str> {
        let (start, end) = (*self.spans.get(index)?)?;
        self.text.get(start as usize..end as usize)
    }

    /// The event as one JSON line (no newline).
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(512);
        self.write_json(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the same JSON the `Serialize` impl produces, written by hand:
    /// field names are static ASCII needing no escaping, so only values go
    /// through serde_json's string escaper. `cargo xtask bench agent`
    /// measured the generic map serializer as the largest cost of output.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut number = String::new();
        out.extend_from_slice(b"{\"EventID\":");
        crate::time::push_decimal(&mut number, u64::from(self.event_id()));
        if let Some(seq) = self.seq {
            number.push_str(",\"Seq\":");
            crate::time::push_decimal(&mut number, seq);
        }
        out.extend_from_slice(number.as_bytes());
        out.extend_from_slice(b",\"EventData\":{");
        for (index, def) in self.ty.fields().iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(def.name.as_bytes());
            out.extend_from_slice(b"\":");
            match (self.value(index), def.ty) {
                // An integer field is a number or null, never a string.
                (value, FieldType::Integer) => match value.and_then(json_number) {
                    Some(number) => out.extend_from_slice(number.as_bytes()),
                    None => out.extend_from_slice(b"null"),
                },
                (None, _) => out.extend_from_slice(b"\"-\""),
                (Some(value), _) => {
                    // Writing a &str into a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut *out, value);
                }
            }
        }
        out.extend_from_slice(b"}}");
    }
}

impl EventFields for SysmonEvent {
    /// Events of types the schema does not cover report `FileEvent` with no
    /// fields, never passed to the engine (the pipeline checks
    /// [`SysmonEvent::logsource_opt`] first).
    fn logsource(&self) -> Logsource {
        self.logsource_opt().unwrap_or(Logsource::FileEvent)
    }

    fn get(&self, index: usize) -> Option<&str> {
        match self.ty {
            EventType::Sigma(_) => self.value(index),
            _ => None,
        }
    }
}

impl SysmonEvent {
    /// The Sigma logsource, for events rules can target.
    pub fn logsource_opt(&self) -> Option<Logsource> {
        match self.ty {
            EventType::Sigma(logsource) => Some(logsource),
            _ => None,
        }
    }
}

/// True for the canonical decimal text of a `u64` below 10^19: emitted as a
/// JSON number. Anything else in an integer field stays a string.
/// Largest integer every JSON reader holds exactly (2^53).
const JSON_EXACT: u64 = 1 << 53;

/// `value` as a JSON number if it is one within 2^53 (canonical decimal).
fn json_number(value: &str) -> Option<&str> {
    let canonical = !value.is_empty()
        && value.len() <= 16
        && value.bytes().all(|b| b.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'));
    (canonical && value.parse::<u64>().is_ok_and(|n| n <= JSON_EXACT)).then_some(value)
}

/// `EventData` of an event: every field of its type, in order. Unknown values
/// are `"-"` as in Sysmon's own output; integer fields are JSON numbers
/// (null when unknown or not an integer within 2^53), never strings.
struct EventData<'a>(&'a SysmonEvent);

impl Serialize for EventData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = self.0.ty.fields();
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for (index, def) in fields.iter().enumerate() {
            match (self.0.value(index), def.ty) {
                // An integer field is a number or null, never a string.
                (value, FieldType::Integer) => {
                    match value.and_then(json_number).map(str::parse::<u64>) {
                        Some(Ok(number)) => map.serialize_entry(def.name, &number)?,
                        _ => map.serialize_entry(def.name, &None::<u64>)?,
                    }
                }
                (None, _) => map.serialize_entry(def.name, "-")?,
                (Some(value), _) => map.serialize_entry(def.name, value)?,
            }
        }
        map.end()
    }
}

/// `{"EventID":1,"Seq":17,"EventData":{…}}`: the shape the content crate's
/// `OwnedEvent::from_sysmon_json` reads back.
impl Serialize for SysmonEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(if self.seq.is_some() { 3 } else { 2 }))?;
        map.serialize_entry("EventID", &self.event_id())?;
        if let Some(seq) = self.seq {
            map.serialize_entry("Seq", &seq)?;
        }
        map.serialize_entry("EventData", &EventData(self))?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_resolves_every_name_the_schema_lists() {
        let layout = Layout::default();
        for ty in EventType::ALL {
            for name in Name::ALL {
                assert_eq!(
                    layout.get(ty, name),
                    ty.field_index(name.as_str())
                        .or_else(|| name.alias().and_then(|a| ty.field_index(a))),
                    "{ty:?} {name:?}"
                );
            }
        }
        let pc = EventType::Sigma(Logsource::ProcessCreation);
        assert_eq!(layout.get(pc, Name::CommandLine), Some(10));
        assert_eq!(layout.get(pc, Name::ImageLoaded), None);
    }

    #[test]
    fn json_has_every_field_with_dashes_and_numbers() {
        let mut event = SysmonEvent::new(EventType::ProcessTerminate);
        event.seq = Some(7);
        assert!(event.set_named("ProcessId", "42"));
        assert!(event.set_named("Image", "C:\\a \"b\".exe"));
        assert!(!event.set_named("CommandLine", "x"));
        assert_eq!(
            event.to_json(),
            r#"{"EventID":5,"Seq":7,"EventData":{"RuleName":"-","UtcTime":"-","ProcessGuid":"-","ProcessId":42,"Image":"C:\\a \"b\".exe","User":"-"}}"#
        );
        assert_eq!(
            event.to_json(),
            serde_json::to_string(&event).expect("serializes"),
            "hand writer == serde"
        );
        event.set_named("User", "\u{1}\u{e9}\\");
        event.set_named("ProcessId", "0042");
        assert_eq!(
            event.to_json(),
            serde_json::to_string(&event).expect("serializes"),
            "hand writer == serde"
        );
        // Reuse keeps nothing from before.
        event.reset(EventType::Sigma(Logsource::FileDelete), None);
        assert_eq!(event.get_named("Image"), None);
        let json: serde_json::Value = serde_json::from_str(&event.to_json()).expect("valid JSON");
        let owned = ringside_content::schema::OwnedEvent::from_sysmon_json(&json)
            .expect("content reads it");
        assert_eq!(owned.logsource, Logsource::FileDelete);
    }

    #[test]
    fn each_integer_field_has_one_json_type_whatever_its_value() {
        let types = |ty: EventType, name: &str, values: &[&str]| -> Vec<&'static str> {
            values
                .iter()
                .map(|v| {
                    let mut event = SysmonEvent::new(ty);
                    if !v.is_empty() {
                        assert!(event.set_named(name, v));
                    }
                    let hand: serde_json::Value =
                        serde_json::from_str(&event.to_json()).expect("JSON");
                    let serde: serde_json::Value =
                        serde_json::to_value(&event).expect("serializes");
                    assert_eq!(hand, serde, "hand writer == serde");
                    match &hand["EventData"][name] {
                        serde_json::Value::Number(_) => "number",
                        serde_json::Value::String(_) => "string",
                        serde_json::Value::Null => "null",
                        _ => "other",
                    }
                })
                .collect()
        };
        // A narrow integer: a number, or null when unknown or out of range,
        // never a string.
        assert_eq!(
            types(
                EventType::ProcessTerminate,
                "ProcessId",
                &["4", "", "9007199254740992", "9007199254740993", "-1"]
            ),
            ["number", "null", "number", "null", "null"]
        );
        // A driver counter (u64): a string, for every value.
        assert_eq!(
            types(
                EventType::EventsLost,
                "Dropped",
                &["0", "18446744073709551615"]
            ),
            ["string", "string"]
        );
    }
}
