//! Callback facts → ring records: safe code over safe views.
//!
//! Each kernel callback copies what it was given into one of the `*Facts`
//! structs below (integers and borrowed slices, nothing else) and calls its
//! `emit`, which sizes the record, reserves ring space, encodes with
//! `ringside-wire`'s writer (truncating every string at its configured cap)
//! and commits, or counts the drop. Nothing here allocates, blocks or panics.

use ringside_wire::{
    Body, DELETE_FLAG_DISPOSITION, DELETE_FLAG_ON_CLOSE, DELETE_FLAG_POSIX, DropReason, EventKind,
    Field, FileCloseModified, FileCreate, FileDelete, FileRename, FileWrite, ImageLoad,
    MAX_CALL_FRAMES, NamedPipe, Origin, PROCESS_FLAG_LOGON_ID, ProcessAccess, ProcessCreate,
    ProcessExit, REMOTE_THREAD_FLAG_START_ADDRESS, RegistryKey, RegistryRename, RegistrySetValue,
    RemoteThread, encode_exact, encoded_len,
};
use zerocopy::IntoBytes;

use crate::ring::{Reservation, Ring};

/// Where records are reserved. The ring itself on the host; in the kernel a
/// wrapper that holds DISPATCH_LEVEL for the reservation only
/// (`kernel::nt::DispatchRing`): the ring's reservation lock assumes its
/// holder cannot be preempted, while encoding stays at the callback's IRQL
/// because what it copies (command lines, names) may be pageable.
pub trait Reserve {
    /// [`Ring::reserve`].
    fn reserve(&self, kind: EventKind, len: usize) -> Result<Reservation<'_>, DropReason>;
    /// [`Ring::drop_event`].
    fn drop_event(&self, kind: EventKind, reason: DropReason);
}

impl Reserve for Ring<'_> {
    fn reserve(&self, kind: EventKind, len: usize) -> Result<Reservation<'_>, DropReason> {
        Ring::reserve(self, kind, len)
    }
    fn drop_event(&self, kind: EventKind, reason: DropReason) {
        Ring::drop_event(self, kind, reason)
    }
}

/// Largest binary SID (`SECURITY_MAX_SID_SIZE`).
pub const SID_CAP: u16 = 68;

/// Caps in bytes (even), from CONFIGURE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    pub name: u16,
    pub command_line: u16,
    /// A registry value's data (Sysmon's `Details` renders a DWORD, a
    /// QWORD, a string or just `Binary Data`: strings are what need room).
    pub registry_data: u16,
}

/// Sizes, reserves, encodes and commits one record; counts the drop if any
/// step fails. Returns the bytes pending in the lane the record went to
/// ([`Committed::lane_backlog`](crate::ring::Committed::lane_backlog)).
pub fn emit<B: Body>(
    ring: &impl Reserve,
    kind: EventKind,
    origin: Origin,
    body: B,
    fields: &[Field<'_>],
) -> Result<usize, DropReason> {
    let Some(len) = encoded_len::<B>(fields) else {
        ring.drop_event(kind, DropReason::EncodeFailed);
        return Err(DropReason::EncodeFailed);
    };
    let mut reservation = ring.reserve(kind, len)?;
    match encode_exact(reservation.buffer(), origin, body, fields) {
        Ok(_) => Ok(reservation.commit().lane_backlog()),
        Err(_) => {
            reservation.discard(DropReason::EncodeFailed);
            Err(DropReason::EncodeFailed)
        }
    }
}

fn utf16(units: &[u16], cap: u16) -> Field<'_> {
    // An even cap keeps whole code units; CONFIGURE only accepts even caps,
    // this makes it hold for any caller.
    Field::new(units.as_bytes(), cap & !1)
}

/// `PsSetCreateProcessNotifyRoutineEx` with `CreateInfo`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessCreateFacts<'a> {
    pub origin: Origin,
    pub parent_pid: u32,
    pub creating_pid: u32,
    pub creating_tid: u32,
    /// `PROCESS_FLAG_*` from `ringside-wire`.
    pub flags: u32,
    pub image_name: &'a [u16],
    pub command_line: &'a [u16],
    pub user_sid: &'a [u8],
    pub integrity_sid: &'a [u8],
    /// The primary token's `TOKEN_STATISTICS.AuthenticationId` as
    /// `HighPart << 32 | LowPart`, or `None` if it could not be queried.
    pub logon_id: Option<u64>,
}

impl ProcessCreateFacts<'_> {
    pub fn emit(&self, ring: &impl Reserve, caps: Caps) -> Result<usize, DropReason> {
        let body = ProcessCreate {
            parent_pid: self.parent_pid,
            creating_pid: self.creating_pid,
            creating_tid: self.creating_tid,
            // The caller's flags are the kernel's; the logon bit is ours,
            // set exactly when `logon_id` is known.
            flags: (self.flags & !PROCESS_FLAG_LOGON_ID)
                | if self.logon_id.is_some() {
                    PROCESS_FLAG_LOGON_ID
                } else {
                    0
                },
            logon_id: self.logon_id.unwrap_or(0),
            ..ProcessCreate::default()
        };
        let fields = [
            utf16(self.image_name, caps.name),
            utf16(self.command_line, caps.command_line),
            Field::new(self.user_sid, SID_CAP),
            Field::new(self.integrity_sid, SID_CAP),
        ];
        emit(ring, EventKind::ProcessCreate, self.origin, body, &fields)
    }
}

/// `PsSetCreateProcessNotifyRoutineEx` without `CreateInfo`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessExitFacts {
    pub origin: Origin,
    pub exit_status: i32,
}

impl ProcessExitFacts {
    pub fn emit(&self, ring: &impl Reserve) -> Result<usize, DropReason> {
        let body = ProcessExit {
            exit_status: u32::from_ne_bytes(self.exit_status.to_ne_bytes()),
            _pad: 0,
        };
        emit(ring, EventKind::ProcessExit, self.origin, body, &[])
    }
}

/// `IMAGE_INFO.Properties` bit layout (ntddk.h): addressing mode in bits
/// 0..8, `SystemModeImage` bit 8, `ImageMappedToAllProcesses` 9,
/// `ExtendedInfoPresent` 10, `MachineTypeMismatch` 11, `ImageSignatureLevel`
/// bits 12..16, `ImageSignatureType` bits 16..19.
pub fn signature_of(properties: u32) -> (u8, u8) {
    (
        ((properties >> 12) & 0xF) as u8,
        ((properties >> 16) & 0x7) as u8,
    )
}

/// `PsSetLoadImageNotifyRoutine`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImageLoadFacts<'a> {
    pub origin: Origin,
    pub image_base: u64,
    pub image_size: u64,
    pub properties: u32,
    pub image_name: &'a [u16],
}

impl ImageLoadFacts<'_> {
    pub fn emit(&self, ring: &impl Reserve, caps: Caps) -> Result<usize, DropReason> {
        let (signature_level, signature_type) = signature_of(self.properties);
        let body = ImageLoad {
            image_base: self.image_base,
            image_size: self.image_size,
            properties: self.properties,
            signature_level,
            signature_type,
            ..ImageLoad::default()
        };
        let fields = [utf16(self.image_name, caps.name)];
        emit(ring, EventKind::ImageLoad, self.origin, body, &fields)
    }
}

/// Thread-creation notify routine (`PsSetCreateThreadNotifyRoutine`,
/// `Create == TRUE`) for a thread whose process is not the creator's: the
/// origin is the creating thread (the routine runs in it), the target and
/// new thread are the routine's arguments.
#[derive(Clone, Copy, Debug, Default)]
pub struct RemoteThreadFacts {
    pub origin: Origin,
    pub target_pid: u32,
    pub new_thread_id: u32,
    /// The new thread's Win32 start address; `None` when it could not be
    /// queried (the record says so with a flag, and is still written).
    pub start_address: Option<u64>,
}

impl RemoteThreadFacts {
    pub fn emit(&self, ring: &impl Reserve) -> Result<usize, DropReason> {
        let body = RemoteThread {
            target_pid: self.target_pid,
            new_thread_id: self.new_thread_id,
            start_address: self.start_address.unwrap_or(0),
            flags: if self.start_address.is_some() {
                REMOTE_THREAD_FLAG_START_ADDRESS
            } else {
                0
            },
            _pad: 0,
        };
        emit(ring, EventKind::RemoteThread, self.origin, body, &[])
    }
}

/// Minifilter on the named-pipe file system: a pipe instance created
/// (`IRP_MJ_CREATE_NAMED_PIPE`) or a client's open of a pipe
/// (`IRP_MJ_CREATE`), whose status is a success (the trampoline checks it;
/// a failed create or connect is never reported).
#[derive(Clone, Copy, Debug, Default)]
pub struct NamedPipeFacts<'a> {
    pub origin: Origin,
    /// `ringside_wire::PIPE_OP_*`.
    pub operation: u32,
    /// FltMgr's opened name (`\Device\NamedPipe\<name>`).
    pub name: &'a [u16],
}

impl NamedPipeFacts<'_> {
    pub fn emit(&self, ring: &impl Reserve, caps: Caps) -> Result<usize, DropReason> {
        let body = NamedPipe {
            operation: self.operation,
            ..NamedPipe::default()
        };
        let fields = [utf16(self.name, caps.name)];
        emit(ring, EventKind::NamedPipe, self.origin, body, &fields)
    }
}

/// Registry callback, `RegNtPostSetValueKey` whose `Status` is a success
/// (the trampoline checks it; a failed set is never reported).
#[derive(Clone, Copy, Debug, Default)]
pub struct RegistrySetValueFacts<'a> {
    pub origin: Origin,
    /// `REG_SET_VALUE_KEY_INFORMATION.Type`.
    pub value_type: u32,
    /// `REG_SET_VALUE_KEY_INFORMATION.DataSize`.
    pub data_size: u32,
    /// The key's object name from `CmCallbackGetKeyObjectIDEx`.
    pub key_name: &'a [u16],
    /// `REG_SET_VALUE_KEY_INFORMATION.ValueName` (empty: the default value).
    pub value_name: &'a [u16],
    /// `REG_SET_VALUE_KEY_INFORMATION.Data`, `DataSize` bytes (the whole
    /// buffer: the cap is applied here, while encoding).
    pub data: &'a [u8],
}

impl RegistrySetValueFacts<'_> {
    /// Names are capped at the name cap, the data at the registry data cap;
    /// the data's full size is kept.
    pub fn emit(&self, ring: &impl Reserve, caps: Caps) -> Result<usize, DropReason> {
        let body = RegistrySetValue {
            value_type: self.value_type,
            data_size: self.data_size,
            ..RegistrySetValue::default()
        };
        let fields = [
            utf16(self.key_name, caps.name),
            utf16(self.value_name, caps.name),
            Field::new(self.data, caps.registry_data),
        ];
        emit(
            ring,
            EventKind::RegistrySetValue,
            self.origin,
            body,
            &fields,
        )
    }
}

/// Registry callback: a key created, a key deleted or a value deleted, with
/// a success status (the trampoline checks it).
#[derive(Clone, Copy, Debug, Default)]
pub struct RegistryKeyFacts<'a> {
    pub origin: Origin,
    /// `ringside_wire::REGISTRY_OP_*`.
    pub operation: u32,
    /// The key's object name from `CmCallbackGetKeyObjectIDEx` (for a
    /// deleted key, queried at the pre-notification).
    pub key_name: &'a [u16],
    /// `REG_DELETE_VALUE_KEY_INFORMATION.ValueName`; empty for keys.
    pub value_name: &'a [u16],
}

impl RegistryKeyFacts<'_> {
    pub fn emit(&self, ring: &impl Reserve, caps: Caps) -> Result<usize, DropReason> {
        let body = RegistryKey {
            operation: self.operation,
            ..RegistryKey::default()
        };
        let fields = [
            utf16(self.key_name, caps.name),
            utf16(self.value_name, caps.name),
        ];
        emit(ring, EventKind::RegistryKey, self.origin, body, &fields)
    }
}

/// Registry callback, `RegNtPostRenameKey` with a success status.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegistryRenameFacts<'a> {
    pub origin: Origin,
    /// The key's object name before the rename (queried at the
    /// pre-notification).
    pub key_name: &'a [u16],
    /// `REG_RENAME_KEY_INFORMATION.NewName`: the new last component.
    pub new_name: &'a [u16],
}

impl RegistryRenameFacts<'_> {
    pub fn emit(&self, ring: &impl Reserve, caps: Caps) -> Result<usize, DropReason> {
        let fields = [
            utf16(self.key_name, caps.name),
            utf16(self.new_name, caps.name),
        ];
        emit(
            ring,
            EventKind::RegistryRename,
            self.origin,
            RegistryRename::default(),
            &fields,
        )
    }
}

/// Object-manager post-operation callback for a process or thread handle
/// whose `ReturnStatus` is a success (the trampoline checks it; a failed
/// open is never reported).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessAccessFacts<'a> {
    /// The requesting thread (the current one) and the time.
    pub origin: Origin,
    pub target_pid: u32,
    /// 0 for a process handle.
    pub target_tid: u32,
    pub granted_access: u32,
    /// `OriginalDesiredAccess`, when the pre-operation callback passed it
    /// on (`None`: the kind was switched on between the two callbacks).
    pub desired_access: Option<u32>,
    /// `ACCESS_FLAG_DUPLICATE`, `ACCESS_FLAG_THREAD`,
    /// `ACCESS_FLAG_KERNEL_HANDLE` (`ACCESS_FLAG_DESIRED_KNOWN` is set
    /// here, from `desired_access`).
    pub flags: u32,
    /// Return addresses, innermost first (more than [`MAX_CALL_FRAMES`]
    /// are cut at that many).
    pub frames: &'a [u64],
}

/// Whether a handle operation is reported at all: not a process opening
/// itself (or one of its own threads), which every process does all the
/// time and Sysmon does not log either, and not the consumer (the agent),
/// whose own opens of new processes (to read their parameters) would
/// otherwise feed back into events about itself. `consumer` is 0 when no
/// consumer is connected (pid 0, the idle process, opens nothing).
pub fn access_reported(source_pid: u32, target_pid: u32, consumer: u32) -> bool {
    source_pid != target_pid && (consumer == 0 || source_pid != consumer)
}

impl ProcessAccessFacts<'_> {
    pub fn emit(&self, ring: &impl Reserve) -> Result<usize, DropReason> {
        let (desired_access, known) = match self.desired_access {
            Some(access) => (access, ringside_wire::ACCESS_FLAG_DESIRED_KNOWN),
            None => (0, 0),
        };
        let body = ProcessAccess {
            target_pid: self.target_pid,
            target_tid: self.target_tid,
            granted_access: self.granted_access,
            desired_access,
            flags: (self.flags & !ringside_wire::ACCESS_FLAG_DESIRED_KNOWN) | known,
            ..ProcessAccess::default()
        };
        // The cap is a whole number of addresses, so a longer trace is cut
        // between frames, never inside one.
        const CAP: u16 = (MAX_CALL_FRAMES * 8) as u16;
        let fields = [Field::new(self.frames.as_bytes(), CAP)];
        emit(ring, EventKind::ProcessAccess, self.origin, body, &fields)
    }
}

/// `FILE_SUPERSEDED`, `FILE_CREATED`, `FILE_OVERWRITTEN` (`IoStatus.Information`).
const FILE_SUPERSEDED: u32 = 0;
const FILE_CREATED: u32 = 2;
const FILE_OVERWRITTEN: u32 = 3;
/// Access rights that let a handle modify file data.
const WRITE_ACCESS: u32 = 0x0002 /* FILE_WRITE_DATA */
    | 0x0004 /* FILE_APPEND_DATA */
    | 0x4000_0000 /* GENERIC_WRITE */
    | 0x1000_0000 /* GENERIC_ALL */;
/// `FILE_DELETE_ON_CLOSE` in `Parameters.Create.Options`.
const FILE_DELETE_ON_CLOSE: u32 = 0x0000_1000;
/// `STATUS_REPARSE`: a success status for an open that did not happen here.
const STATUS_REPARSE: i32 = 0x0000_0104;

/// Whether a create (of a file, or of or into a pipe) that completed with
/// `status` opened something here: a success, but not `STATUS_REPARSE`,
/// which sends the open elsewhere (a symbolic link or mount point).
pub fn opened(status: i32) -> bool {
    status >= 0 && status != STATUS_REPARSE
}

/// Minifilter post-create.
#[derive(Clone, Copy, Debug, Default)]
pub struct FileCreateFacts<'a> {
    pub origin: Origin,
    pub desired_access: u32,
    pub create_options: u32,
    pub information: u32,
    pub status: i32,
    pub name: &'a [u16],
}

/// What a completed create is worth reporting as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreateInterest {
    /// Created, superseded, overwritten or opened for write.
    pub file_create: bool,
    /// Opened with `FILE_DELETE_ON_CLOSE`.
    pub delete_on_close: bool,
}

impl CreateInterest {
    pub fn any(self) -> bool {
        self.file_create || self.delete_on_close
    }
}

/// Decides, before any name is queried, whether a create is reported.
pub fn create_interest(
    status: i32,
    information: u32,
    desired_access: u32,
    create_options: u32,
) -> CreateInterest {
    if !opened(status) {
        return CreateInterest::default();
    }
    CreateInterest {
        file_create: matches!(
            information,
            FILE_SUPERSEDED | FILE_CREATED | FILE_OVERWRITTEN
        ) || desired_access & WRITE_ACCESS != 0,
        delete_on_close: create_options & FILE_DELETE_ON_CLOSE != 0,
    }
}

impl FileCreateFacts<'_> {
    pub fn emit(&self, ring: &impl Reserve, caps: Caps) -> Result<usize, DropReason> {
        let body = FileCreate {
            desired_access: self.desired_access,
            create_options: self.create_options,
            information: self.information,
            status: u32::from_ne_bytes(self.status.to_ne_bytes()),
            ..FileCreate::default()
        };
        emit(
            ring,
            EventKind::FileCreate,
            self.origin,
            body,
            &[utf16(self.name, caps.name)],
        )
    }
}

/// A record that carries only a name: first write, close-after-modify.
#[derive(Clone, Copy, Debug, Default)]
pub struct FileNameFacts<'a> {
    pub origin: Origin,
    pub name: &'a [u16],
}

impl FileNameFacts<'_> {
    pub fn emit_write(&self, ring: &impl Reserve, caps: Caps) -> Result<usize, DropReason> {
        let body = FileWrite::default();
        emit(
            ring,
            EventKind::FileWrite,
            self.origin,
            body,
            &[utf16(self.name, caps.name)],
        )
    }

    pub fn emit_close_modified(
        &self,
        ring: &impl Reserve,
        caps: Caps,
    ) -> Result<usize, DropReason> {
        let body = FileCloseModified::default();
        let fields = [utf16(self.name, caps.name)];
        emit(
            ring,
            EventKind::FileCloseModified,
            self.origin,
            body,
            &fields,
        )
    }
}

/// `FILE_INFORMATION_CLASS` values the driver looks at.
pub mod info_class {
    pub const RENAME: u32 = 10;
    pub const DISPOSITION: u32 = 13;
    pub const RENAME_BYPASS_ACCESS_CHECK: u32 = 56;
    pub const DISPOSITION_EX: u32 = 64;
    pub const RENAME_EX: u32 = 65;
    pub const RENAME_EX_BYPASS_ACCESS_CHECK: u32 = 66;
}

/// What a set-information request means for the sensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetInformation {
    /// A rename; `flags` is `ReplaceIfExists` (classic) or `FILE_RENAME_*` (Ex).
    Rename { class: u32, flags: u32 },
    /// A delete disposition; `flags` are `DELETE_FLAG_*`.
    Delete { class: u32, flags: u32 },
    /// Anything else, including clearing a delete disposition.
    Ignore,
}

/// Classifies a set-information request from its class and the first bytes
/// of its (system) buffer. A buffer too short for its class is ignored.
pub fn classify_set_information(class: u32, info: &[u8]) -> SetInformation {
    let u32_at_0 = || {
        info.get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    match class {
        info_class::RENAME | info_class::RENAME_BYPASS_ACCESS_CHECK => match info.first() {
            Some(&replace) => SetInformation::Rename {
                class,
                flags: u32::from(replace != 0),
            },
            None => SetInformation::Ignore,
        },
        info_class::RENAME_EX | info_class::RENAME_EX_BYPASS_ACCESS_CHECK => match u32_at_0() {
            Some(flags) => SetInformation::Rename { class, flags },
            None => SetInformation::Ignore,
        },
        info_class::DISPOSITION => match info.first() {
            Some(&delete) if delete != 0 => SetInformation::Delete {
                class,
                flags: DELETE_FLAG_DISPOSITION,
            },
            _ => SetInformation::Ignore,
        },
        info_class::DISPOSITION_EX => match u32_at_0() {
            // FILE_DISPOSITION_DELETE = 1, FILE_DISPOSITION_POSIX_SEMANTICS = 2.
            Some(flags) if flags & 1 != 0 => SetInformation::Delete {
                class,
                flags: DELETE_FLAG_DISPOSITION | if flags & 2 != 0 { DELETE_FLAG_POSIX } else { 0 },
            },
            _ => SetInformation::Ignore,
        },
        _ => SetInformation::Ignore,
    }
}

/// Where a `FILE_RENAME_INFORMATION` buffer names its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenameTarget {
    /// `RootDirectory` (a handle value, 0 if the name is absolute).
    pub root_directory: u64,
    /// Byte offset of `FileName` in the buffer.
    pub name_offset: usize,
    /// `FileNameLength` in bytes; `name_offset + name_len <= buffer.len()`.
    pub name_len: u32,
}

/// Offset of `RootDirectory` and `FileNameLength`/`FileName` in
/// `FILE_RENAME_INFORMATION` on 64-bit Windows.
use crate::wdk::rename_information::{
    FILE_NAME as RENAME_NAME_OFFSET, FILE_NAME_LENGTH as RENAME_NAME_LENGTH_OFFSET,
    ROOT_DIRECTORY as RENAME_ROOT_OFFSET,
};

/// Locates the target name of a rename request in its system buffer, with
/// every length checked against the buffer. `None` if it does not fit.
pub fn rename_target(info: &[u8]) -> Option<RenameTarget> {
    let root = info.get(RENAME_ROOT_OFFSET..RENAME_NAME_LENGTH_OFFSET)?;
    let root_directory = u64::from_le_bytes(root.try_into().ok()?);
    let len = info.get(RENAME_NAME_LENGTH_OFFSET..RENAME_NAME_OFFSET)?;
    let name_len = u32::from_le_bytes(len.try_into().ok()?);
    let end = RENAME_NAME_OFFSET.checked_add(usize::try_from(name_len).ok()?)?;
    (end <= info.len() && name_len % 2 == 0).then_some(RenameTarget {
        root_directory,
        name_offset: RENAME_NAME_OFFSET,
        name_len,
    })
}

/// Rename: the name before and after.
#[derive(Clone, Copy, Debug, Default)]
pub struct FileRenameFacts<'a> {
    pub origin: Origin,
    pub class: u32,
    pub flags: u32,
    pub old_name: &'a [u16],
    pub new_name: &'a [u16],
}

impl FileRenameFacts<'_> {
    pub fn emit(&self, ring: &impl Reserve, caps: Caps) -> Result<usize, DropReason> {
        let body = FileRename {
            flags: self.flags,
            information_class: self.class,
            ..FileRename::default()
        };
        let fields = [
            utf16(self.old_name, caps.name),
            utf16(self.new_name, caps.name),
        ];
        emit(ring, EventKind::FileRename, self.origin, body, &fields)
    }
}

/// Delete: disposition (class 13/64) or delete-on-close (class 0).
#[derive(Clone, Copy, Debug, Default)]
pub struct FileDeleteFacts<'a> {
    pub origin: Origin,
    pub class: u32,
    pub flags: u32,
    pub name: &'a [u16],
}

impl FileDeleteFacts<'_> {
    /// Facts for a create that carried `FILE_DELETE_ON_CLOSE`.
    pub fn on_close(origin: Origin, name: &[u16]) -> FileDeleteFacts<'_> {
        FileDeleteFacts {
            origin,
            class: 0,
            flags: DELETE_FLAG_ON_CLOSE,
            name,
        }
    }

    pub fn emit(&self, ring: &impl Reserve, caps: Caps) -> Result<usize, DropReason> {
        let body = FileDelete {
            flags: self.flags,
            information_class: self.class,
            ..FileDelete::default()
        };
        emit(
            ring,
            EventKind::FileDelete,
            self.origin,
            body,
            &[utf16(self.name, caps.name)],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringside_wire::{Record, Records};
    use std::vec;
    use std::vec::Vec;

    const CAPS: Caps = Caps {
        name: 64,
        command_line: 128,
        registry_data: 64,
    };

    fn units(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    /// Drains `ring` and decodes every record with the agent's decoder.
    fn drain(ring: &Ring<'_>) -> Vec<u8> {
        let mut out = vec![0u8; 64 * 1024];
        let n = ring.drain_into(&mut out);
        out.truncate(n);
        out
    }

    fn with_ring(f: impl FnOnce(&Ring<'_>)) {
        let mut memory = vec![0u64; 8192 / 8];
        let ring = Ring::new(memory.as_mut_slice().as_mut_bytes()).expect("ring");
        f(&ring);
    }

    #[test]
    fn process_create_round_trips_through_the_decoder() {
        with_ring(|ring| {
            let image = units(r"\Device\HarddiskVolume3\Windows\System32\cmd.exe");
            let command_line = units(
                "cmd.exe /c echo a long command line that exceeds the cap of 128 bytes, surely",
            );
            let sid = [1u8, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];
            let facts = ProcessCreateFacts {
                origin: Origin {
                    pid: 100,
                    tid: 7,
                    timestamp: 42,
                },
                parent_pid: 4,
                creating_pid: 5,
                creating_tid: 6,
                flags: 1,
                image_name: &image,
                command_line: &command_line,
                user_sid: &sid,
                integrity_sid: &[],
                logon_id: Some(0x0000_0001_0000_03e7),
            };
            facts.emit(ring, CAPS).expect("emit");
            let bytes = drain(ring);
            let records: Vec<_> = Records::new(&bytes).collect();
            assert_eq!(records.len(), 1);
            let Ok(Record::ProcessCreate(event)) = records[0] else {
                panic!("not a process create: {:?}", records[0])
            };
            assert_eq!(event.header.pid, 100);
            assert_eq!(event.header.tid, 7);
            assert_eq!(event.header.timestamp, 42);
            assert_eq!(event.body.parent_pid, 4);
            let body = event.body;
            assert_eq!(
                (body.creating_pid, body.creating_tid, body.flags),
                (5, 6, 1 | ringside_wire::PROCESS_FLAG_LOGON_ID)
            );
            assert_eq!(event.logon_id(), Some(0x0000_0001_0000_03e7));
            // 49 units = 98 bytes: over the 64-byte name cap, truncated to 32 units.
            assert_eq!(event.image_name().bytes, &image.as_bytes()[..64]);
            assert!(event.image_name().truncated);
            assert_eq!(event.command_line().bytes.len(), 128);
            assert_eq!(event.user_sid().bytes, &sid);
            assert!(!event.user_sid().truncated);
            assert!(event.integrity_sid().is_empty());
            assert!(event.header.flags & ringside_wire::HEADER_FLAG_TRUNCATED != 0);
        });
    }

    #[test]
    fn an_unknown_logon_session_clears_the_flag_whatever_the_caller_passed() {
        with_ring(|ring| {
            let facts = ProcessCreateFacts {
                origin: Origin::default(),
                parent_pid: 4,
                creating_pid: 4,
                creating_tid: 8,
                flags: 1 | PROCESS_FLAG_LOGON_ID,
                image_name: &[],
                command_line: &[],
                user_sid: &[],
                integrity_sid: &[],
                logon_id: None,
            };
            facts.emit(ring, CAPS).expect("emit");
            let bytes = drain(ring);
            let Some(Ok(Record::ProcessCreate(event))) = Records::new(&bytes).next() else {
                panic!("not a process create")
            };
            assert_eq!((event.body.flags, event.body.logon_id), (1, 0));
            assert_eq!(event.logon_id(), None);
        });
    }

    #[test]
    fn odd_caps_keep_whole_code_units() {
        with_ring(|ring| {
            let name = units("abcdefgh");
            let facts = FileNameFacts {
                origin: Origin::default(),
                name: &name,
            };
            facts
                .emit_write(
                    ring,
                    Caps {
                        name: 7,
                        command_line: 64,
                        registry_data: 64,
                    },
                )
                .expect("emit");
            let bytes = drain(ring);
            let Some(Ok(Record::FileWrite(event))) = Records::new(&bytes).next() else {
                panic!("not a file write")
            };
            assert_eq!(event.name().bytes.len(), 6);
        });
    }

    #[test]
    fn a_full_ring_drops_and_counts() {
        with_ring(|ring| {
            let name = units(&"x".repeat(200));
            let facts = FileNameFacts {
                origin: Origin::default(),
                name: &name,
            };
            let caps = Caps {
                name: 512,
                command_line: 512,
                registry_data: 512,
            };
            let mut delivered = 0;
            let mut dropped = 0;
            for _ in 0..64 {
                match facts.emit_close_modified(ring, caps) {
                    Ok(_) => delivered += 1,
                    Err(reason) => {
                        assert_eq!(reason, DropReason::RingFull);
                        dropped += 1;
                    }
                }
            }
            assert!(delivered > 0 && dropped > 0);
            let stats = ring.stats();
            let i = EventKind::FileCloseModified.index();
            assert_eq!(stats.produced[i], 64);
            assert_eq!(stats.dropped[i], dropped);
        });
    }

    #[test]
    fn every_facts_kind_encodes_its_kind() {
        with_ring(|ring| {
            let name = units(r"\x");
            let o = Origin::default();
            ProcessExitFacts {
                origin: o,
                exit_status: -1,
            }
            .emit(ring)
            .expect("exit");
            ImageLoadFacts {
                origin: o,
                image_base: 0x1000,
                image_size: 0x2000,
                properties: 0x0003_5100,
                image_name: &name,
            }
            .emit(ring, CAPS)
            .expect("image");
            FileCreateFacts {
                origin: o,
                desired_access: 2,
                create_options: 0,
                information: 2,
                status: 0,
                name: &name,
            }
            .emit(ring, CAPS)
            .expect("create");
            FileRenameFacts {
                origin: o,
                class: 10,
                flags: 1,
                old_name: &name,
                new_name: &name,
            }
            .emit(ring, CAPS)
            .expect("rename");
            FileDeleteFacts::on_close(o, &name)
                .emit(ring, CAPS)
                .expect("delete");
            RegistrySetValueFacts {
                origin: o,
                value_type: 4,
                data_size: 4,
                key_name: &name,
                value_name: &name,
                data: &[1, 0, 0, 0],
            }
            .emit(ring, CAPS)
            .expect("registry");
            RegistryKeyFacts {
                origin: o,
                operation: ringside_wire::REGISTRY_OP_CREATE_KEY,
                key_name: &name,
                value_name: &[],
            }
            .emit(ring, CAPS)
            .expect("registry key");
            RegistryRenameFacts {
                origin: o,
                key_name: &name,
                new_name: &name,
            }
            .emit(ring, CAPS)
            .expect("registry rename");
            RemoteThreadFacts {
                origin: o,
                target_pid: 636,
                new_thread_id: 7208,
                start_address: None,
            }
            .emit(ring)
            .expect("remote thread");
            NamedPipeFacts {
                origin: o,
                operation: ringside_wire::PIPE_OP_CONNECTED,
                name: &name,
            }
            .emit(ring, CAPS)
            .expect("named pipe");
            let bytes = drain(ring);
            let kinds: Vec<u16> = Records::new(&bytes)
                .map(|r| r.expect("decodes").header().kind)
                .collect();
            assert_eq!(kinds, vec![2, 3, 4, 6, 7, 9, 10, 11, 13, 14]);
            let Some(Ok(Record::RemoteThread(thread))) = Records::new(&bytes).nth(8) else {
                panic!("not a remote thread")
            };
            // A start address that could not be queried is flagged missing.
            assert_eq!((thread.body.start_address, thread.body.flags), (0, 0));
            let Some(Ok(Record::ImageLoad(image))) = Records::new(&bytes).nth(1) else {
                panic!("not an image load")
            };
            let body = image.body;
            assert_eq!((body.signature_level, body.signature_type), (5, 3));
            assert_eq!(
                body.properties & ringside_wire::IMAGE_PROPERTY_SYSTEM_MODE,
                1 << 8
            );
        });
    }

    #[test]
    fn process_access_keeps_at_most_the_frame_cap_and_says_what_it_knows() {
        with_ring(|ring| {
            let frames: Vec<u64> = (0..40).map(|i| 0x7ff8_0000_1000 + i).collect();
            let facts = ProcessAccessFacts {
                origin: Origin {
                    pid: 296,
                    tid: 5260,
                    timestamp: 1,
                },
                target_pid: 860,
                target_tid: 0,
                granted_access: 0x1fffff,
                desired_access: Some(0x1410),
                flags: ringside_wire::ACCESS_FLAG_DUPLICATE,
                frames: &frames,
            };
            facts.emit(ring).expect("access");
            ProcessAccessFacts {
                desired_access: None,
                // A caller's stray DESIRED_KNOWN does not survive.
                flags: ringside_wire::ACCESS_FLAG_DESIRED_KNOWN,
                frames: &frames[..3],
                ..facts
            }
            .emit(ring)
            .expect("access");
            let bytes = drain(ring);
            let events: Vec<_> = Records::new(&bytes)
                .map(|r| match r {
                    Ok(Record::ProcessAccess(e)) => e,
                    other => panic!("not an access: {other:?}"),
                })
                .collect();
            let [long, short] = events.as_slice() else {
                panic!("two records")
            };
            assert_eq!(long.call_trace().collect::<Vec<_>>(), &frames[..32]);
            assert_ne!(
                long.header.flags & ringside_wire::HEADER_FLAG_TRUNCATED,
                0,
                "a trace cut at the cap is flagged"
            );
            assert_eq!((long.header.pid, long.header.tid), (296, 5260));
            assert_eq!(
                (
                    long.body.target_pid,
                    long.body.granted_access,
                    long.body.desired_access
                ),
                (860, 0x1fffff, 0x1410)
            );
            assert_eq!(
                long.body.flags,
                ringside_wire::ACCESS_FLAG_DUPLICATE | ringside_wire::ACCESS_FLAG_DESIRED_KNOWN
            );
            assert_eq!(short.call_trace().count(), 3);
            assert_eq!((short.body.flags, short.body.desired_access), (0, 0));
        });
    }

    #[test]
    fn self_access_and_the_consumer_are_not_reported() {
        assert!(access_reported(296, 860, 0));
        assert!(access_reported(296, 860, 1000));
        assert!(!access_reported(860, 860, 0), "a process opening itself");
        assert!(!access_reported(1000, 860, 1000), "the agent");
        // The agent's process is still watched as a target.
        assert!(access_reported(296, 1000, 1000));
    }

    #[test]
    fn registry_data_is_capped_at_its_own_cap_and_its_full_size_kept() {
        with_ring(|ring| {
            let key = units(r"\REGISTRY\MACHINE\SOFTWARE\Ringside");
            let data = [0xabu8; 300];
            let caps = Caps {
                name: 64,
                command_line: 1024,
                registry_data: 66,
            };
            RegistrySetValueFacts {
                origin: Origin::default(),
                value_type: 3,
                data_size: 300,
                key_name: &key,
                value_name: &[],
                data: &data,
            }
            .emit(ring, caps)
            .expect("registry");
            let bytes = drain(ring);
            let Some(Ok(Record::RegistrySetValue(e))) = Records::new(&bytes).next() else {
                panic!("not a registry set")
            };
            assert_eq!((e.body.value_type, e.body.data_size), (3, 300));
            assert_eq!(e.data().bytes, &data[..66]);
            assert_eq!((e.body.data.len, e.body.data.full_len), (66, 300));
            assert_eq!(e.key_name().bytes.len(), 64);
            assert_eq!(e.value_name().bytes, b"");
            assert_ne!(
                e.header.flags & ringside_wire::HEADER_FLAG_TRUNCATED,
                0,
                "truncation is flagged"
            );
        });
    }

    #[test]
    fn create_interest_filters_reads_and_failures() {
        // Opened for read only: not reported.
        assert!(!create_interest(0, 1, 0x0012_0089, 0).any());
        // Created.
        assert!(create_interest(0, FILE_CREATED, 0x0012_0089, 0).file_create);
        // Opened for write.
        assert!(create_interest(0, 1, 0x0002, 0).file_create);
        // Failed or reparsed: nothing.
        assert!(!create_interest(-1_073_741_790, FILE_CREATED, 2, 0x1000).any());
        assert!(!create_interest(STATUS_REPARSE, FILE_CREATED, 2, 0).any());
        assert!(opened(0) && opened(1) && !opened(STATUS_REPARSE) && !opened(-1));
        // Delete-on-close.
        let interest = create_interest(0, 1, 0x0001_0000, FILE_DELETE_ON_CLOSE);
        assert!(interest.delete_on_close && !interest.file_create);
    }

    #[test]
    fn rename_target_is_bounds_checked() {
        let mut info = vec![0u8; 20];
        info[8] = 0x44;
        info[16] = 6;
        assert_eq!(rename_target(&info), None, "name runs past the buffer");
        info.extend_from_slice(&[b'a', 0, b'b', 0, b'c', 0]);
        assert_eq!(
            rename_target(&info),
            Some(RenameTarget {
                root_directory: 0x44,
                name_offset: 20,
                name_len: 6
            })
        );
        info[16] = 5;
        assert_eq!(rename_target(&info), None, "odd UTF-16 length");
        info[16] = 0xff;
        info[19] = 0xff;
        assert_eq!(rename_target(&info), None);
        assert_eq!(rename_target(&info[..12]), None);
    }

    #[test]
    fn set_information_is_classified_from_the_buffer() {
        assert_eq!(
            classify_set_information(10, &[1, 0, 0, 0]),
            SetInformation::Rename {
                class: 10,
                flags: 1
            }
        );
        assert_eq!(
            classify_set_information(65, &[3, 0, 0, 0, 9]),
            SetInformation::Rename {
                class: 65,
                flags: 3
            }
        );
        assert_eq!(
            classify_set_information(65, &[3, 0]),
            SetInformation::Ignore
        );
        assert_eq!(
            classify_set_information(13, &[1]),
            SetInformation::Delete {
                class: 13,
                flags: DELETE_FLAG_DISPOSITION
            }
        );
        assert_eq!(classify_set_information(13, &[0]), SetInformation::Ignore);
        assert_eq!(
            classify_set_information(64, &[3, 0, 0, 0]),
            SetInformation::Delete {
                class: 64,
                flags: DELETE_FLAG_DISPOSITION | DELETE_FLAG_POSIX
            }
        );
        assert_eq!(
            classify_set_information(64, &[2, 0, 0, 0]),
            SetInformation::Ignore
        );
        assert_eq!(
            classify_set_information(4, &[1; 40]),
            SetInformation::Ignore
        );
        assert_eq!(classify_set_information(10, &[]), SetInformation::Ignore);
    }
}
