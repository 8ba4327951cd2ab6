//! Record layouts: the header every record starts with, and the fixed part of
//! each kind. Variable-length raw data (UTF-16 names, SIDs) lives in the
//! record's tail and is referenced by a [`Blob`].
//!
//! A record is `RecordHeader`, then the kind's fixed body, then the tail, then
//! zero padding to a multiple of [`RECORD_ALIGN`]; `RecordHeader::size` counts
//! all of it, so the next record in a batch starts at `offset + size`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::kind::{DROP_REASON_COUNT, EVENT_KIND_COUNT, EventKind, RecordKind};

/// Every record's size is a multiple of this, and so is every record's offset
/// in a READ batch.
pub const RECORD_ALIGN: usize = 8;
// The encoder rounds up with a mask.
const _: () = assert!(RECORD_ALIGN.is_power_of_two());

/// Largest record the driver writes or the decoder accepts (fits `u16` blob
/// offsets, and a READ buffer of [`crate::ioctl::READ_MIN_BUFFER`] always
/// holds at least one record).
pub const MAX_RECORD_SIZE: usize = 0xFFF8;

/// Version stored in every header; equal to the low byte of the ABI version.
pub const RECORD_VERSION: u8 = 4;
const _: () = assert!(RECORD_VERSION as u32 == crate::ABI_VERSION & 0xFF);

/// Header flag: at least one blob of this record was truncated at its cap.
pub const HEADER_FLAG_TRUNCATED: u8 = 1 << 0;

/// The first 32 bytes of every record.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct RecordHeader {
    /// Bytes in the record, header and padding included; a multiple of 8.
    pub size: u32,
    /// A [`RecordKind`] wire value.
    pub kind: u16,
    /// [`RECORD_VERSION`].
    pub version: u8,
    /// `HEADER_FLAG_*` bits.
    pub flags: u8,
    /// Process the event concerns (the target process for image loads).
    pub pid: u32,
    /// Thread that was current when the callback ran (0 if not meaningful).
    pub tid: u32,
    /// Position in the driver's delivery order, stamped by the consumer when
    /// the record is copied out: contiguous across READs, starting at 0.
    pub seq: u64,
    /// `KeQuerySystemTimePrecise`: 100 ns units since 1601-01-01 UTC.
    pub timestamp: u64,
}

/// Byte offset of [`RecordHeader::seq`], which the ring's consumer stamps.
pub const HEADER_SEQ_OFFSET: usize = 16;
/// Size of [`RecordHeader`].
pub const HEADER_SIZE: usize = 32;

impl RecordHeader {
    /// The kind, if the wire value is known.
    pub fn record_kind(&self) -> Option<RecordKind> {
        RecordKind::try_from(self.kind).ok()
    }
}

/// Reference to raw bytes in the record's tail.
///
/// `len == 0` means empty or absent (then `offset` is 0). `full_len` is the
/// length of the source before truncation: the blob was truncated at the
/// configured cap exactly when `len < full_len`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct Blob {
    /// Offset from the start of the record.
    pub offset: u16,
    /// Bytes present in the record.
    pub len: u16,
    /// Bytes the source had.
    pub full_len: u16,
    pub _pad: u16,
}

/// How a blob's bytes are to be read; the decoder checks the shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobEncoding {
    /// UTF-16LE code units: the length must be even.
    Utf16,
    /// Opaque bytes (a SID in self-relative binary form).
    Bytes,
    /// Little-endian 64-bit addresses, back to back: the length must be a
    /// multiple of 8.
    Addresses,
}

/// The fixed body of a record kind: what the generic writer and decoder need
/// to know about it.
pub trait Body: FromBytes + IntoBytes + KnownLayout + Immutable + Copy {
    /// The kind written into the header.
    const KIND: RecordKind;
    /// How many blobs the body references, and how each is encoded.
    const BLOBS: &'static [BlobEncoding];
    /// The `i`th blob reference (`i < BLOBS.len()`).
    fn blob(&self, i: usize) -> Option<Blob>;
    /// Mutable access to the `i`th blob reference, for the writer.
    fn blob_mut(&mut self, i: usize) -> Option<&mut Blob>;
}

/// Implements [`Body`] for a struct whose blobs are named fields.
macro_rules! body {
    ($ty:ty, $kind:expr, [$($field:ident: $enc:ident),* $(,)?]) => {
        impl Body for $ty {
            const KIND: RecordKind = $kind;
            const BLOBS: &'static [BlobEncoding] = &[$(BlobEncoding::$enc),*];
            #[allow(unused_variables, reason = "bodies without blobs ignore the index")]
            fn blob(&self, i: usize) -> Option<Blob> {
                let fields: &[Blob] = &[$(self.$field),*];
                fields.get(i).copied()
            }
            #[allow(unused_variables, reason = "bodies without blobs ignore the index")]
            fn blob_mut(&mut self, i: usize) -> Option<&mut Blob> {
                let fields: [&mut Blob; 0 $(+ { stringify!($field); 1 })*] = [$(&mut self.$field),*];
                fields.into_iter().nth(i)
            }
        }
    };
}

/// `PS_CREATE_NOTIFY_INFO` flag: `FileOpenNameAvailable`.
pub const PROCESS_FLAG_FILE_OPEN_NAME_AVAILABLE: u32 = 1 << 0;
/// `PS_CREATE_NOTIFY_INFO` flag: `IsSubsystemProcess` (e.g. a WSL pico process).
pub const PROCESS_FLAG_SUBSYSTEM: u32 = 1 << 1;
/// Set by the driver, not the kernel: [`ProcessCreate::logon_id`] holds the
/// primary token's `TOKEN_STATISTICS.AuthenticationId`. Clear when that
/// query failed: the logon session is unknown (and `logon_id` is 0), which
/// the agent writes as `-`, as it does for any missing value.
pub const PROCESS_FLAG_LOGON_ID: u32 = 1 << 2;

/// Process creation (`PsSetCreateProcessNotifyRoutineEx` with `CreateInfo`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ProcessCreate {
    /// `CreateInfo->ParentProcessId`.
    pub parent_pid: u32,
    /// `CreateInfo->CreatingThreadId.UniqueProcess`.
    pub creating_pid: u32,
    /// `CreateInfo->CreatingThreadId.UniqueThread`.
    pub creating_tid: u32,
    /// `PROCESS_FLAG_*`.
    pub flags: u32,
    /// `CreateInfo->ImageFileName` (UTF-16, NT path).
    pub image_name: Blob,
    /// `CreateInfo->CommandLine` (UTF-16).
    pub command_line: Blob,
    /// The primary token's user SID (binary SID).
    pub user_sid: Blob,
    /// The primary token's integrity-level SID (binary SID).
    pub integrity_sid: Blob,
    /// The primary token's logon session, `TOKEN_STATISTICS.AuthenticationId`:
    /// the LUID's 8 bytes as the kernel holds them (`LowPart` then
    /// `HighPart`, little-endian), read as one `u64`, i.e.
    /// `HighPart << 32 | LowPart`. Meaningful only with
    /// [`PROCESS_FLAG_LOGON_ID`]; 0 without it.
    pub logon_id: u64,
}
body!(ProcessCreate, RecordKind::Event(EventKind::ProcessCreate), [
    image_name: Utf16, command_line: Utf16, user_sid: Bytes, integrity_sid: Bytes,
]);

/// Process exit (`PsSetCreateProcessNotifyRoutineEx` without `CreateInfo`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ProcessExit {
    /// `PsGetProcessExitStatus` (an NTSTATUS, stored as its bits).
    pub exit_status: u32,
    pub _pad: u32,
}
body!(ProcessExit, RecordKind::Event(EventKind::ProcessExit), []);

/// `IMAGE_INFO.Properties` bit: `SystemModeImage` (a driver, not a user DLL).
pub const IMAGE_PROPERTY_SYSTEM_MODE: u32 = 1 << 8;
/// `IMAGE_INFO.Properties` bit: `ExtendedInfoPresent` (ntddk.h: addressing
/// mode is bits 0..8, then SystemModeImage, ImageMappedToAllProcesses,
/// ExtendedInfoPresent, MachineTypeMismatch).
pub const IMAGE_PROPERTY_EXTENDED_INFO: u32 = 1 << 10;

/// Image load (`PsSetLoadImageNotifyRoutine`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ImageLoad {
    /// `IMAGE_INFO.ImageBase`.
    pub image_base: u64,
    /// `IMAGE_INFO.ImageSize`.
    pub image_size: u64,
    /// `IMAGE_INFO.Properties` as the kernel gave it (see `IMAGE_PROPERTY_*`).
    pub properties: u32,
    /// `IMAGE_INFO.ImageSignatureLevel` (`SE_SIGNING_LEVEL_*`).
    pub signature_level: u8,
    /// `IMAGE_INFO.ImageSignatureType` (`SE_IMAGE_SIGNATURE_TYPE`).
    pub signature_type: u8,
    pub _pad: u16,
    /// `FullImageName` (UTF-16, NT path).
    pub image_name: Blob,
}
body!(ImageLoad, RecordKind::Event(EventKind::ImageLoad), [image_name: Utf16]);

/// File created, overwritten or opened for write (minifilter post-create).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct FileCreate {
    /// `Parameters.Create.SecurityContext->DesiredAccess`.
    pub desired_access: u32,
    /// `Parameters.Create.Options`: disposition in the high 8 bits, options below.
    pub create_options: u32,
    /// `IoStatus.Information`: `FILE_CREATED`, `FILE_OPENED`, `FILE_OVERWRITTEN`, ...
    pub information: u32,
    /// `IoStatus.Status` (NTSTATUS bits).
    pub status: u32,
    /// FltMgr's normalized name (UTF-16).
    pub name: Blob,
}
body!(FileCreate, RecordKind::Event(EventKind::FileCreate), [name: Utf16]);

/// First write through a stream handle (minifilter pre-write).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct FileWrite {
    /// FltMgr's normalized name (UTF-16).
    pub name: Blob,
}
body!(FileWrite, RecordKind::Event(EventKind::FileWrite), [name: Utf16]);

/// Rename (`FileRenameInformation` / `FileRenameInformationEx`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct FileRename {
    /// `ReplaceIfExists` for the classic class, `FILE_RENAME_*` flags for Ex.
    pub flags: u32,
    /// The `FILE_INFORMATION_CLASS` used (10 or 65).
    pub information_class: u32,
    /// Name before the rename (UTF-16, normalized).
    pub old_name: Blob,
    /// Name after the rename (UTF-16, from `FltGetDestinationFileNameInformation`).
    pub new_name: Blob,
}
body!(FileRename, RecordKind::Event(EventKind::FileRename), [old_name: Utf16, new_name: Utf16]);

/// Delete flag: `FileDispositionInformation(Ex)` set `DeleteFile`.
pub const DELETE_FLAG_DISPOSITION: u32 = 1 << 0;
/// Delete flag: opened with `FILE_DELETE_ON_CLOSE`. An attempt, reported
/// at the open that asked for it: the file goes at its last close unless
/// the delete is cancelled before (a disposition reset), which this record
/// cannot know. A record without it (a disposition set through
/// set-information) is reported only after the file system accepted it.
pub const DELETE_FLAG_ON_CLOSE: u32 = 1 << 1;
/// Delete flag: `FILE_DISPOSITION_POSIX_SEMANTICS` requested.
pub const DELETE_FLAG_POSIX: u32 = 1 << 2;

/// File marked for deletion (set-information disposition, or delete-on-close).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct FileDelete {
    /// `DELETE_FLAG_*`.
    pub flags: u32,
    /// The `FILE_INFORMATION_CLASS` used (13 or 64; 0 for delete-on-close).
    pub information_class: u32,
    /// FltMgr's normalized name (UTF-16).
    pub name: Blob,
}
body!(FileDelete, RecordKind::Event(EventKind::FileDelete), [name: Utf16]);

/// A handle that modified its file was cleaned up (minifilter cleanup).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct FileCloseModified {
    /// FltMgr's normalized name (UTF-16).
    pub name: Blob,
}
body!(FileCloseModified, RecordKind::Event(EventKind::FileCloseModified), [name: Utf16]);

/// Registry value set (`RegNtPostSetValueKey`, reported only when the
/// post-operation `Status` is a success).
///
/// Everything is raw: the key's object name as the configuration manager
/// gives it (`\REGISTRY\MACHINE\...`, `\REGISTRY\USER\<SID>\...`), the
/// value name as the caller passed it (empty for the default value), the
/// `REG_*` type and the first bytes of the data, capped at the name cap of
/// CONFIGURE (`max_name_bytes`). The agent renders `TargetObject` and
/// `Details`; the kernel parses nothing.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct RegistrySetValue {
    /// `REG_SET_VALUE_KEY_INFORMATION.Type` (`REG_SZ`, `REG_DWORD`, ...).
    pub value_type: u32,
    /// `REG_SET_VALUE_KEY_INFORMATION.DataSize`: the full data size, which
    /// may exceed what a blob's `u16` `full_len` can say.
    pub data_size: u32,
    /// `CmCallbackGetKeyObjectIDEx`'s object name (UTF-16).
    pub key_name: Blob,
    /// `REG_SET_VALUE_KEY_INFORMATION.ValueName` (UTF-16; empty: the
    /// key's default value).
    pub value_name: Blob,
    /// The first bytes of `REG_SET_VALUE_KEY_INFORMATION.Data`.
    pub data: Blob,
}
body!(RegistrySetValue, RecordKind::Event(EventKind::RegistrySetValue), [
    key_name: Utf16, value_name: Utf16, data: Bytes,
]);

/// [`RegistryKey::operation`]: a key was created or opened through a create
/// call (`RegNtPostCreateKeyEx`; the key may have existed before).
pub const REGISTRY_OP_CREATE_KEY: u32 = 1;
/// [`RegistryKey::operation`]: a key was deleted (`RegNtPostDeleteKey`).
pub const REGISTRY_OP_DELETE_KEY: u32 = 2;
/// [`RegistryKey::operation`]: a value was deleted (`RegNtPostDeleteValueKey`).
pub const REGISTRY_OP_DELETE_VALUE: u32 = 3;

/// A registry key created, a key deleted or a value deleted, reported only
/// when the post-operation `Status` is a success. Raw, like
/// [`RegistrySetValue`]: the key's object name (for a deleted key, the name
/// it had just before the delete) and, for a deleted value, its name.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct RegistryKey {
    /// `REGISTRY_OP_*`.
    pub operation: u32,
    /// Zero.
    pub _pad: u32,
    /// `CmCallbackGetKeyObjectIDEx`'s object name (UTF-16).
    pub key_name: Blob,
    /// `REG_DELETE_VALUE_KEY_INFORMATION.ValueName` (UTF-16; empty for key
    /// operations, and for the key's default value).
    pub value_name: Blob,
}
body!(RegistryKey, RecordKind::Event(EventKind::RegistryKey), [
    key_name: Utf16, value_name: Utf16,
]);

/// A registry key renamed (`RegNtPostRenameKey`, success status only).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct RegistryRename {
    /// The key's object name before the rename (UTF-16).
    pub key_name: Blob,
    /// `REG_RENAME_KEY_INFORMATION.NewName` as the caller passed it: the
    /// key's new last component, not a full path (UTF-16).
    pub new_name: Blob,
}
body!(RegistryRename, RecordKind::Event(EventKind::RegistryRename), [
    key_name: Utf16, new_name: Utf16,
]);

/// [`ProcessAccess::flags`]: the handle was duplicated
/// (`OB_OPERATION_HANDLE_DUPLICATE`), not created.
pub const ACCESS_FLAG_DUPLICATE: u32 = 1 << 0;
/// [`ProcessAccess::flags`]: the handle is to a thread (`PsThreadType`);
/// [`ProcessAccess::target_tid`] is that thread.
pub const ACCESS_FLAG_THREAD: u32 = 1 << 1;
/// [`ProcessAccess::flags`]: `OB_POST_OPERATION_INFORMATION.KernelHandle`,
/// a kernel handle (opened by kernel-mode code, not by the process).
pub const ACCESS_FLAG_KERNEL_HANDLE: u32 = 1 << 2;
/// [`ProcessAccess::flags`]: [`ProcessAccess::desired_access`] is known
/// (the pre-operation callback saw this operation and passed it on).
pub const ACCESS_FLAG_DESIRED_KNOWN: u32 = 1 << 3;

/// Most return addresses a [`ProcessAccess`] call trace carries.
pub const MAX_CALL_FRAMES: usize = 32;

/// A process or thread handle was created or duplicated (the object
/// manager's post-operation callback, reported only when `ReturnStatus` is
/// a success). The header's pid/tid are the requesting thread's.
///
/// Raw facts only: the access mask the object manager granted, the target
/// ids, and the requesting thread's user-mode return addresses, innermost
/// first. The agent resolves them to `module+offset` with its own image
/// load table (Sysmon's `CallTrace`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ProcessAccess {
    /// The process the handle is to (the thread's process for a thread).
    pub target_pid: u32,
    /// The thread the handle is to; 0 for a process handle.
    pub target_tid: u32,
    /// `OB_POST_*_HANDLE_INFORMATION.GrantedAccess`.
    pub granted_access: u32,
    /// `OB_PRE_*_HANDLE_INFORMATION.OriginalDesiredAccess`, meaningful
    /// only with [`ACCESS_FLAG_DESIRED_KNOWN`].
    pub desired_access: u32,
    /// `ACCESS_FLAG_*`.
    pub flags: u32,
    pub _pad: u32,
    /// Return addresses (`u64` each, little-endian), innermost first, at
    /// most [`MAX_CALL_FRAMES`].
    pub call_trace: Blob,
}
body!(ProcessAccess, RecordKind::Event(EventKind::ProcessAccess), [
    call_trace: Addresses,
]);

/// [`RemoteThread::flags`]: `start_address` holds the new thread's start
/// address (`ZwQueryInformationThread`, `ThreadQuerySetWin32StartAddress`).
/// Without it the query failed or could not be made at the callback's IRQL,
/// and `start_address` is 0: the thread is still reported, because who
/// created a thread in which process is the fact most rules match on.
pub const REMOTE_THREAD_FLAG_START_ADDRESS: u32 = 1 << 0;

/// A thread created in another process (`PsSetCreateThreadNotifyRoutine`,
/// whose routine runs in the creating thread: the header's pid and tid are
/// the creator's, the source of Sysmon 8).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct RemoteThread {
    /// The process the new thread runs in (the routine's `ProcessId`).
    pub target_pid: u32,
    /// The new thread (the routine's `ThreadId`).
    pub new_thread_id: u32,
    /// The new thread's Win32 start address, valid with
    /// [`REMOTE_THREAD_FLAG_START_ADDRESS`].
    pub start_address: u64,
    /// `REMOTE_THREAD_FLAG_*`.
    pub flags: u32,
    pub _pad: u32,
}
body!(RemoteThread, RecordKind::Event(EventKind::RemoteThread), []);

/// [`NamedPipe::operation`]: a server created a pipe instance
/// (`IRP_MJ_CREATE_NAMED_PIPE`, Sysmon 17).
pub const PIPE_OP_CREATED: u32 = 1;
/// [`NamedPipe::operation`]: a client opened (connected to) a pipe
/// (`IRP_MJ_CREATE` on the named-pipe file system, Sysmon 18).
pub const PIPE_OP_CONNECTED: u32 = 2;

/// A named pipe created or connected to, reported only when the operation
/// succeeded (so no status is carried). The header's pid/tid are the
/// creating (server) or opening (client) thread's. Raw: the name as the
/// file system's name query gave it (`\Device\NamedPipe\<name>`); the
/// agent strips the device prefix.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct NamedPipe {
    /// `PIPE_OP_*`.
    pub operation: u32,
    /// Zero.
    pub _pad: u32,
    /// `FLT_FILE_NAME_INFORMATION.Name` (opened name, UTF-16).
    pub name: Blob,
}
body!(NamedPipe, RecordKind::Event(EventKind::NamedPipe), [name: Utf16]);

/// Events were dropped. Counts are cumulative since the driver loaded, so a
/// repeated or reordered `Lost` record cannot make the agent double-count:
/// the delta against the previous `Lost` is what was lost in between.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct Lost {
    /// Cumulative drops per [`EventKind::index`].
    pub dropped: [u64; EVENT_KIND_COUNT],
}
body!(Lost, RecordKind::Lost, []);

/// The driver's counters (the STATS IOCTL; also a record kind in replays).
///
/// For every kind, `produced == delivered + dropped + in the ring`; once the
/// ring is drained, `produced == delivered + dropped` exactly.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct DriverStats {
    /// Events observed, per kind (enabled kinds only).
    pub produced: [u64; EVENT_KIND_COUNT],
    /// Events copied out to the consumer, per kind.
    pub delivered: [u64; EVENT_KIND_COUNT],
    /// Events dropped, per kind.
    pub dropped: [u64; EVENT_KIND_COUNT],
    /// Events dropped, per [`crate::DropReason::index`].
    pub dropped_by_reason: [u64; DROP_REASON_COUNT],
    /// 1 while a drop has not yet been reported by a `Lost` record (one is
    /// written ahead of the next event that finds room), else 0. With an
    /// empty ring and nothing owed, the last `Lost` record's counts equal
    /// `dropped`: the agent checks that its in-band view agrees.
    pub lost_owed: u64,
    /// `Lost` records written into the ring.
    pub lost_records: u64,
    /// Next sequence number the consumer will stamp (records delivered so far,
    /// `Lost` records included).
    pub next_seq: u64,
    /// READ requests completed.
    pub reads_completed: u64,
    /// Ring data capacity in bytes.
    pub ring_capacity: u32,
    /// Bytes currently reserved or committed in the ring.
    pub ring_used: u32,
    /// READ requests pending in the cancel-safe queue.
    pub reads_pending: u32,
    /// 1 while a consumer holds the control device open.
    pub consumer_connected: u32,
}
body!(DriverStats, RecordKind::Stats, []);

macro_rules! assert_layout {
    ($ty:ty, $size:expr, { $($field:ident: $off:expr),* $(,)? }) => {
        const _: () = assert!(core::mem::size_of::<$ty>() == $size);
        const _: () = assert!(core::mem::size_of::<$ty>() % RECORD_ALIGN == 0);
        $(const _: () = assert!(core::mem::offset_of!($ty, $field) == $off);)*
    };
}

assert_layout!(RecordHeader, HEADER_SIZE, {
    size: 0, kind: 4, version: 6, flags: 7, pid: 8, tid: 12, seq: HEADER_SEQ_OFFSET, timestamp: 24,
});
const _: () = assert!(core::mem::size_of::<Blob>() == 8);
const _: () = assert!(core::mem::offset_of!(Blob, len) == 2);
const _: () = assert!(core::mem::offset_of!(Blob, full_len) == 4);
assert_layout!(ProcessCreate, 56, {
    parent_pid: 0, creating_pid: 4, creating_tid: 8, flags: 12,
    image_name: 16, command_line: 24, user_sid: 32, integrity_sid: 40, logon_id: 48,
});
assert_layout!(ProcessExit, 8, { exit_status: 0 });
assert_layout!(ImageLoad, 32, {
    image_base: 0, image_size: 8, properties: 16, signature_level: 20, signature_type: 21, image_name: 24,
});
assert_layout!(FileCreate, 24, { desired_access: 0, create_options: 4, information: 8, status: 12, name: 16 });
assert_layout!(FileWrite, 8, { name: 0 });
assert_layout!(FileRename, 24, { flags: 0, information_class: 4, old_name: 8, new_name: 16 });
assert_layout!(FileDelete, 16, { flags: 0, information_class: 4, name: 8 });
assert_layout!(FileCloseModified, 8, { name: 0 });
assert_layout!(RegistrySetValue, 32, {
    value_type: 0, data_size: 4, key_name: 8, value_name: 16, data: 24,
});
assert_layout!(RegistryKey, 24, { operation: 0, key_name: 8, value_name: 16 });
assert_layout!(RegistryRename, 16, { key_name: 0, new_name: 8 });
assert_layout!(ProcessAccess, 32, {
    target_pid: 0, target_tid: 4, granted_access: 8, desired_access: 12, flags: 16,
    call_trace: 24,
});
assert_layout!(RemoteThread, 24, {
    target_pid: 0, new_thread_id: 4, start_address: 8, flags: 16,
});
assert_layout!(NamedPipe, 16, { operation: 0, name: 8 });
assert_layout!(Lost, 112, { dropped: 0 });
assert_layout!(DriverStats, 424, {
    produced: 0, delivered: 112, dropped: 224, dropped_by_reason: 336, lost_owed: 376,
    lost_records: 384, next_seq: 392, reads_completed: 400, ring_capacity: 408,
    consumer_connected: 420,
});
