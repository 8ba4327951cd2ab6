//! Record kinds: what a record in the ring describes.

/// Every record kind on the wire. Stored as `u16` in [`crate::RecordHeader::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// An observed event (counted per kind in produced/delivered/dropped).
    Event(EventKind),
    /// Events were dropped; carries the cumulative per-kind drop counts.
    Lost,
    /// A snapshot of the driver's counters (written by the agent's recorder
    /// into replay files; the driver answers STATS with the same struct).
    Stats,
}

/// The events the sensor observes, one per row of DESIGN.md's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum EventKind {
    /// `PsSetCreateProcessNotifyRoutineEx`, `CreateInfo != NULL`.
    ProcessCreate = 1,
    /// `PsSetCreateProcessNotifyRoutineEx`, `CreateInfo == NULL`.
    ProcessExit = 2,
    /// `PsSetLoadImageNotifyRoutine`.
    ImageLoad = 3,
    /// Minifilter post-create: a file created, overwritten or opened for write.
    FileCreate = 4,
    /// Minifilter pre-write: the first write through a stream handle.
    FileWrite = 5,
    /// Minifilter set-information: `FileRenameInformation(Ex)`.
    FileRename = 6,
    /// Minifilter set-information / create: disposition or delete-on-close.
    FileDelete = 7,
    /// Minifilter cleanup of a handle that modified its file.
    FileCloseModified = 8,
    /// Registry callback (`CmRegisterCallbackEx`), `RegNtPostSetValueKey`
    /// with a success status: a value was set.
    RegistrySetValue = 9,
    /// Registry callback: a key created (`RegNtPostCreateKeyEx`), a key
    /// deleted (`RegNtPostDeleteKey`) or a value deleted
    /// (`RegNtPostDeleteValueKey`), each reported only with a success status.
    RegistryKey = 10,
    /// Registry callback, `RegNtPostRenameKey` with a success status: a key
    /// was renamed.
    RegistryRename = 11,
    /// Object-manager callback (`ObRegisterCallbacks`), post-operation of
    /// a process or thread handle created or duplicated: the access one
    /// process got to another (Sysmon 10).
    ProcessAccess = 12,
    /// `PsSetCreateThreadNotifyRoutine`, `Create == TRUE`, where the
    /// creating thread's process is not the new thread's process: a thread
    /// created in another process (Sysmon 8).
    RemoteThread = 13,
    /// Minifilter on the named-pipe file system (NPFS): a pipe instance
    /// created by a server (`IRP_MJ_CREATE_NAMED_PIPE`, Sysmon 17) or a
    /// client connecting to one (`IRP_MJ_CREATE` on the NPFS volume,
    /// Sysmon 18), each reported only with a success status.
    NamedPipe = 14,
}

/// Number of [`EventKind`]s; the length of every per-kind counter array.
pub const EVENT_KIND_COUNT: usize = 14;

/// Wire value of [`RecordKind::Lost`].
pub const KIND_LOST: u16 = 0x8001;
/// Wire value of [`RecordKind::Stats`].
pub const KIND_STATS: u16 = 0x8002;

impl EventKind {
    /// All event kinds, in counter-index order.
    pub const ALL: [EventKind; EVENT_KIND_COUNT] = [
        EventKind::ProcessCreate,
        EventKind::ProcessExit,
        EventKind::ImageLoad,
        EventKind::FileCreate,
        EventKind::FileWrite,
        EventKind::FileRename,
        EventKind::FileDelete,
        EventKind::FileCloseModified,
        EventKind::RegistrySetValue,
        EventKind::RegistryKey,
        EventKind::RegistryRename,
        EventKind::ProcessAccess,
        EventKind::RemoteThread,
        EventKind::NamedPipe,
    ];

    /// Index into per-kind counter arrays (`0..EVENT_KIND_COUNT`): kinds
    /// are numbered densely from 1.
    #[inline]
    pub const fn index(self) -> usize {
        (self as usize).wrapping_sub(1)
    }

    /// Bit of this kind in an event mask (CONFIGURE, HELLO).
    #[inline]
    pub const fn mask_bit(self) -> u32 {
        1 << self.index()
    }

    /// Stable name for logs and tables.
    pub const fn name(self) -> &'static str {
        match self {
            EventKind::ProcessCreate => "process_create",
            EventKind::ProcessExit => "process_exit",
            EventKind::ImageLoad => "image_load",
            EventKind::FileCreate => "file_create",
            EventKind::FileWrite => "file_write",
            EventKind::FileRename => "file_rename",
            EventKind::FileDelete => "file_delete",
            EventKind::FileCloseModified => "file_close_modified",
            EventKind::RegistrySetValue => "registry_set_value",
            EventKind::RegistryKey => "registry_key",
            EventKind::RegistryRename => "registry_rename",
            EventKind::ProcessAccess => "process_access",
            EventKind::RemoteThread => "remote_thread",
            EventKind::NamedPipe => "named_pipe",
        }
    }
}

/// Mask with every event kind's bit set.
pub const ALL_EVENTS_MASK: u32 = (1 << EVENT_KIND_COUNT) - 1;

/// The kinds the driver produces until the agent asks otherwise: all but
/// FileWrite, which no Sysmon event or Sigma logsource consumes today;
/// FileCloseModified, whose named streams only are Sysmon's 15 (the agent
/// asks for it when a configuration or rule wants streams); and
/// ProcessAccess, which is on the hottest
/// path the sensor observes (every OpenProcess, OpenThread and
/// DuplicateHandle of a process or thread handle on the machine, most of
/// them by csrss, services, anti-malware and the shell) and which Sysmon
/// itself logs only when its configuration has a ProcessAccess rule. The
/// kernel does no work (no name query, no record) for events no one reads;
/// an agent that wants them sets their bits in CONFIGURE.
pub const DEFAULT_EVENTS_MASK: u32 = ALL_EVENTS_MASK
    & !(EventKind::FileWrite.mask_bit()
        | EventKind::FileCloseModified.mask_bit()
        | EventKind::ProcessAccess.mask_bit());

/// The wire value was not a known kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownKind(pub u16);

impl TryFrom<u16> for EventKind {
    type Error = UnknownKind;
    fn try_from(value: u16) -> Result<Self, UnknownKind> {
        match value {
            1 => Ok(EventKind::ProcessCreate),
            2 => Ok(EventKind::ProcessExit),
            3 => Ok(EventKind::ImageLoad),
            4 => Ok(EventKind::FileCreate),
            5 => Ok(EventKind::FileWrite),
            6 => Ok(EventKind::FileRename),
            7 => Ok(EventKind::FileDelete),
            8 => Ok(EventKind::FileCloseModified),
            9 => Ok(EventKind::RegistrySetValue),
            10 => Ok(EventKind::RegistryKey),
            11 => Ok(EventKind::RegistryRename),
            12 => Ok(EventKind::ProcessAccess),
            13 => Ok(EventKind::RemoteThread),
            14 => Ok(EventKind::NamedPipe),
            other => Err(UnknownKind(other)),
        }
    }
}

impl TryFrom<u16> for RecordKind {
    type Error = UnknownKind;
    fn try_from(value: u16) -> Result<Self, UnknownKind> {
        match value {
            KIND_LOST => Ok(RecordKind::Lost),
            KIND_STATS => Ok(RecordKind::Stats),
            other => EventKind::try_from(other).map(RecordKind::Event),
        }
    }
}

impl RecordKind {
    /// The `u16` stored in the record header.
    pub const fn wire(self) -> u16 {
        match self {
            RecordKind::Event(kind) => kind as u16,
            RecordKind::Lost => KIND_LOST,
            RecordKind::Stats => KIND_STATS,
        }
    }
}

/// Why an event was dropped instead of delivered. Indexes
/// [`crate::DriverStats::dropped_by_reason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum DropReason {
    /// No space in the ring (the consumer is behind).
    RingFull = 0,
    /// The callback ran at an IRQL where the data could not be collected.
    Irql = 1,
    /// A kernel query the record needs failed (e.g. FltGetFileNameInformation).
    QueryFailed = 2,
    /// Reservation succeeded but encoding failed; the slot was discarded.
    EncodeFailed = 3,
    /// Too many producers raced for the same space (bounded retry exhausted).
    Contention = 4,
}

/// Number of [`DropReason`]s.
pub const DROP_REASON_COUNT: usize = 5;

impl DropReason {
    /// Index into per-reason counter arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_wire_value() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::try_from(kind as u16), Ok(kind));
            assert_eq!(
                RecordKind::try_from(RecordKind::Event(kind).wire()),
                Ok(RecordKind::Event(kind))
            );
        }
        assert_eq!(RecordKind::try_from(KIND_LOST), Ok(RecordKind::Lost));
        assert_eq!(RecordKind::try_from(0), Err(UnknownKind(0)));
        assert_eq!(RecordKind::try_from(15), Err(UnknownKind(15)));
    }

    #[test]
    fn indices_are_dense_and_masks_distinct() {
        for (i, kind) in EventKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
            assert_eq!(kind.mask_bit(), 1 << i);
        }
        assert_eq!(ALL_EVENTS_MASK, 0x3fff);
        assert_ne!(DEFAULT_EVENTS_MASK & EventKind::NamedPipe.mask_bit(), 0);
        assert_eq!(DEFAULT_EVENTS_MASK & EventKind::ProcessAccess.mask_bit(), 0);
    }
}
