//! Synthetic batches and replay files, encoded with `ringside-wire`'s own
//! writer exactly as the driver would: scripted scenarios for tests, the
//! benchmark's large realistic mix, and the fuzz seed corpus.

use std::io::{self, Write};

use ringside_wire::record::{
    Body, FileCloseModified, FileCreate, FileDelete, FileRename, FileWrite, HEADER_SEQ_OFFSET,
    ImageLoad, Lost, ProcessCreate, ProcessExit,
};
use ringside_wire::{EVENT_KIND_COUNT, Field, Origin, encode, encoded_len};

use crate::source::writer::ReplayWriter;

/// Caps used for generated fields (what the driver's defaults allow).
const NAME_CAP: u16 = 1024;
const COMMAND_LINE_CAP: u16 = 8192;
const SID_CAP: u16 = 68;

/// UTF-16LE bytes of `text`.
pub fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A binary SID.
pub fn sid(authority: u64, sub_authorities: &[u32]) -> Vec<u8> {
    let mut out = vec![1, sub_authorities.len() as u8];
    out.extend_from_slice(&authority.to_be_bytes()[2..]);
    for sub in sub_authorities {
        out.extend_from_slice(&sub.to_le_bytes());
    }
    out
}

/// Builds READ batches record by record, stamping sequence numbers as the
/// driver's consumer does.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    /// The sequence number the next record gets.
    pub next_seq: u64,
    pub records: u64,
}

impl BatchBuilder {
    pub fn new() -> Self {
        BatchBuilder::default()
    }

    /// Appends one record (encoding errors are impossible for the sizes the
    /// helpers use; a failure leaves the batch unchanged).
    pub fn push<B: Body>(&mut self, origin: Origin, body: B, fields: &[Field<'_>]) {
        let Some(len) = encoded_len::<B>(fields) else {
            return;
        };
        let start = self.buf.len();
        self.buf.resize(start + len, 0);
        match encode(&mut self.buf[start..], origin, body, fields) {
            Ok(_) => {
                self.buf[start + HEADER_SEQ_OFFSET..start + HEADER_SEQ_OFFSET + 8]
                    .copy_from_slice(&self.next_seq.to_le_bytes());
                self.next_seq += 1;
                self.records += 1;
            }
            Err(_) => self.buf.truncate(start),
        }
    }

    /// A process creation whose logon session the driver could not query.
    pub fn process_create(
        &mut self,
        origin: Origin,
        parent_pid: u32,
        image: &str,
        command_line: &str,
        user_sid: &[u8],
        integrity_sid: &[u8],
    ) {
        self.process_create_in_session(
            origin,
            parent_pid,
            image,
            command_line,
            user_sid,
            integrity_sid,
            None,
        );
    }

    /// A process creation in the logon session `logon_id` (the token's
    /// `AuthenticationId`, `HighPart << 32 | LowPart`), or with an unknown
    /// one (`None`: the driver's logon session query failed).
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per field of the record"
    )]
    pub fn process_create_in_session(
        &mut self,
        origin: Origin,
        parent_pid: u32,
        image: &str,
        command_line: &str,
        user_sid: &[u8],
        integrity_sid: &[u8],
        logon_id: Option<u64>,
    ) {
        let (image, command_line) = (utf16(image), utf16(command_line));
        let body = ProcessCreate {
            parent_pid,
            creating_pid: parent_pid,
            flags: if logon_id.is_some() {
                ringside_wire::PROCESS_FLAG_LOGON_ID
            } else {
                0
            },
            logon_id: logon_id.unwrap_or(0),
            ..Default::default()
        };
        self.push(
            origin,
            body,
            &[
                Field::new(&image, NAME_CAP),
                Field::new(&command_line, COMMAND_LINE_CAP),
                Field::new(user_sid, SID_CAP),
                Field::new(integrity_sid, SID_CAP),
            ],
        );
    }

    /// A process creation made by thread `creating_tid` of `parent_pid`
    /// (the thread that then starts the new process's first thread).
    pub fn process_create_by_thread(
        &mut self,
        origin: Origin,
        parent_pid: u32,
        creating_tid: u32,
        image: &str,
        user_sid: &[u8],
        integrity_sid: &[u8],
    ) {
        let image = utf16(image);
        let body = ProcessCreate {
            parent_pid,
            creating_pid: parent_pid,
            creating_tid,
            ..Default::default()
        };
        self.push(
            origin,
            body,
            &[
                Field::new(&image, NAME_CAP),
                Field::new(&[], COMMAND_LINE_CAP),
                Field::new(user_sid, SID_CAP),
                Field::new(integrity_sid, SID_CAP),
            ],
        );
    }

    /// A thread created by `origin` (the creating thread) in `target_pid`,
    /// starting at `start` (`None`: the driver could not query it).
    pub fn remote_thread(
        &mut self,
        origin: Origin,
        target_pid: u32,
        new_thread_id: u32,
        start: Option<u64>,
    ) {
        let body = ringside_wire::RemoteThread {
            target_pid,
            new_thread_id,
            start_address: start.unwrap_or(0),
            flags: if start.is_some() {
                ringside_wire::REMOTE_THREAD_FLAG_START_ADDRESS
            } else {
                0
            },
            _pad: 0,
        };
        self.push(origin, body, &[]);
    }

    /// A named pipe created (`ringside_wire::PIPE_OP_CREATED`) or
    /// connected to (`PIPE_OP_CONNECTED`) by `origin`; `name` as the driver
    /// copies it (`\Device\NamedPipe\<name>`).
    pub fn named_pipe(&mut self, origin: Origin, operation: u32, name: &str) {
        let name = utf16(name);
        let body = ringside_wire::NamedPipe {
            operation,
            ..Default::default()
        };
        self.push(origin, body, &[Field::new(&name, NAME_CAP)]);
    }

    pub fn process_exit(&mut self, origin: Origin, exit_status: u32) {
        self.push(
            origin,
            ProcessExit {
                exit_status,
                _pad: 0,
            },
            &[],
        );
    }

    pub fn image_load(&mut self, origin: Origin, name: &str, signature_level: u8) {
        self.image_load_at(origin, name, 0x7ff0_0000_0000, 0x10_0000, signature_level);
    }

    /// A user-mode image mapped at `base`, `size` bytes.
    pub fn image_load_at(
        &mut self,
        origin: Origin,
        name: &str,
        base: u64,
        size: u64,
        signature_level: u8,
    ) {
        let name = utf16(name);
        let body = ImageLoad {
            image_base: base,
            image_size: size,
            signature_level,
            ..Default::default()
        };
        self.push(origin, body, &[Field::new(&name, NAME_CAP)]);
    }

    /// A process handle to `target` opened by the origin's thread and
    /// granted `granted`, from the user-mode return addresses `frames`
    /// (innermost first).
    pub fn process_access(&mut self, origin: Origin, target: u32, granted: u32, frames: &[u64]) {
        let frames: Vec<u8> = frames.iter().flat_map(|f| f.to_le_bytes()).collect();
        let body = ringside_wire::ProcessAccess {
            target_pid: target,
            granted_access: granted,
            desired_access: granted,
            flags: ringside_wire::ACCESS_FLAG_DESIRED_KNOWN,
            ..Default::default()
        };
        self.push(
            origin,
            body,
            &[Field::new(
                &frames,
                (ringside_wire::MAX_CALL_FRAMES * 8) as u16,
            )],
        );
    }

    /// A driver load as Windows reports it: `IMAGE_INFO.Properties` with
    /// `SystemModeImage` and the signature level and type in their bits
    /// (12..16, 16..19), the image in system space.
    pub fn driver_load(&mut self, origin: Origin, name: &str, signature_level: u8) {
        let name = utf16(name);
        let signature_type = 1; // SeImageSignatureEmbedded
        let body = ImageLoad {
            image_base: 0xffff_f800_0000_0000,
            image_size: 0x1_0000,
            properties: ringside_wire::IMAGE_PROPERTY_SYSTEM_MODE
                | (u32::from(signature_level & 0xF) << 12)
                | (signature_type << 16),
            signature_level,
            signature_type: signature_type as u8,
            ..Default::default()
        };
        self.push(origin, body, &[Field::new(&name, NAME_CAP)]);
    }

    /// `information` is `IoStatus.Information` (2 = FILE_CREATED).
    pub fn file_create(&mut self, origin: Origin, name: &str, information: u32) {
        let name = utf16(name);
        let body = FileCreate {
            desired_access: 0x4000_0000,
            information,
            ..Default::default()
        };
        self.push(origin, body, &[Field::new(&name, NAME_CAP)]);
    }

    /// A successful registry value set: the key's object name, the value
    /// name (empty: the default value), the `REG_*` type and the data.
    pub fn registry_set_value(
        &mut self,
        origin: Origin,
        key: &str,
        value: &str,
        value_type: u32,
        data: &[u8],
    ) {
        let (key, value) = (utf16(key), utf16(value));
        let body = ringside_wire::RegistrySetValue {
            value_type,
            data_size: data.len() as u32,
            ..Default::default()
        };
        self.push(
            origin,
            body,
            &[
                Field::new(&key, NAME_CAP),
                Field::new(&value, NAME_CAP),
                Field::new(data, NAME_CAP),
            ],
        );
    }

    /// A successful key creation, key deletion or value deletion
    /// (`ringside_wire::REGISTRY_OP_*`; `value` only for a deleted value).
    pub fn registry_key(&mut self, origin: Origin, operation: u32, key: &str, value: &str) {
        let (key, value) = (utf16(key), utf16(value));
        let body = ringside_wire::RegistryKey {
            operation,
            ..Default::default()
        };
        self.push(
            origin,
            body,
            &[Field::new(&key, NAME_CAP), Field::new(&value, NAME_CAP)],
        );
    }

    /// A successful key rename: the old object name and the new last
    /// component, as the driver copies them.
    pub fn registry_rename(&mut self, origin: Origin, key: &str, new_name: &str) {
        let (key, new_name) = (utf16(key), utf16(new_name));
        self.push(
            origin,
            ringside_wire::RegistryRename::default(),
            &[Field::new(&key, NAME_CAP), Field::new(&new_name, NAME_CAP)],
        );
    }

    pub fn file_write(&mut self, origin: Origin, name: &str) {
        let name = utf16(name);
        self.push(origin, FileWrite::default(), &[Field::new(&name, NAME_CAP)]);
    }

    pub fn file_close_modified(&mut self, origin: Origin, name: &str) {
        let name = utf16(name);
        self.push(
            origin,
            FileCloseModified::default(),
            &[Field::new(&name, NAME_CAP)],
        );
    }

    pub fn file_rename(&mut self, origin: Origin, old: &str, new: &str) {
        let (old, new) = (utf16(old), utf16(new));
        let body = FileRename {
            information_class: 10,
            ..Default::default()
        };
        self.push(
            origin,
            body,
            &[Field::new(&old, NAME_CAP), Field::new(&new, NAME_CAP)],
        );
    }

    pub fn file_delete(&mut self, origin: Origin, name: &str) {
        let name = utf16(name);
        let body = FileDelete {
            flags: ringside_wire::record::DELETE_FLAG_DISPOSITION,
            information_class: 13,
            ..Default::default()
        };
        self.push(origin, body, &[Field::new(&name, NAME_CAP)]);
    }

    /// A `Lost` record with cumulative per-kind drop counts.
    pub fn lost(&mut self, origin: Origin, dropped: [u64; EVENT_KIND_COUNT]) {
        self.push(origin, Lost { dropped }, &[]);
    }

    /// Skips `n` sequence numbers (records the agent will never see).
    pub fn skip(&mut self, n: u64) {
        self.next_seq += n;
    }

    /// Bytes in the current batch.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True if the current batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Ends the current batch and returns its bytes.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// The volume map every generated file carries.
pub const VOLUME_MAP: &[u8] = b"\\Device\\HarddiskVolume3\tC:\n\\Device\\HarddiskVolume4\tD:\n";

/// The DLLs [`realistic`] loads, each at its own base.
const DLLS: [&str; 6] = [
    "ntdll.dll",
    "kernel32.dll",
    "KernelBase.dll",
    "user32.dll",
    "amsi.dll",
    "clr.dll",
];
const DLL_SIZE: u64 = 0x20_0000;

fn dll_base(index: usize) -> u64 {
    0x7ffa_0000_0000 + 0x100_0000 * index as u64
}

/// Writes a large replay with a realistic event mix: per 100 events about
/// 1 process create and 1 exit, 20 image loads, 30 file creates (most of
/// them opens), 20 first writes, 20 close-after-modify, 4 renames,
/// 2 process accesses (8 to 16 frames) and 3 deletes. Batches are about 16 KiB as with the driver's default
/// CONFIGURE. Returns the number of records written.
pub fn realistic<W: Write>(out: W, events: u64, start_time: u64) -> io::Result<u64> {
    let mut writer = ReplayWriter::new(out, start_time)?;
    writer.frame(
        ringside_wire::replay::FrameKind::VolumeMap,
        start_time,
        VOLUME_MAP,
    )?;
    let mut batch = BatchBuilder::new();
    let user = sid(5, &[21, 1_111_111_111, 222_222_222, 333_333_333, 1001]);
    let medium = sid(16, &[0x2000]);
    let mut live: Vec<u32> = vec![4];
    let mut next_pid = 1000u32;
    let mut time = start_time;
    // A small linear congruential generator: deterministic, dependency-free.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut rand = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u32
    };
    let mut written = 0u64;
    while written < events {
        time += 1_000; // 100 µs per event
        let r = rand() % 100;
        let pid = live[rand() as usize % live.len()];
        let origin = Origin {
            pid,
            tid: pid + 4,
            timestamp: time,
        };
        let n = rand() % 500;
        let dir = [
            "Users\\alice\\AppData\\Local\\Temp",
            "Windows\\Temp",
            "ProgramData\\App",
            "Users\\alice\\Documents",
        ][rand() as usize % 4];
        let file = format!("\\Device\\HarddiskVolume3\\{dir}\\file{n}.dat");
        match r {
            0 => {
                next_pid += 4;
                let image = [
                    "cmd.exe",
                    "powershell.exe",
                    "conhost.exe",
                    "svchost.exe",
                    "notepad.exe",
                ][rand() as usize % 5];
                batch.process_create(
                    Origin {
                        pid: next_pid,
                        tid: next_pid + 4,
                        timestamp: time,
                    },
                    pid,
                    &format!("\\Device\\HarddiskVolume3\\Windows\\System32\\{image}"),
                    &format!("{image} /c echo {n} > C:\\Windows\\Temp\\out{n}.txt"),
                    &user,
                    &medium,
                );
                live.push(next_pid);
            }
            1 if live.len() > 8 => {
                let index = 1 + rand() as usize % (live.len() - 1);
                let gone = live.swap_remove(index);
                batch.process_exit(
                    Origin {
                        pid: gone,
                        tid: 0,
                        timestamp: time,
                    },
                    0,
                );
            }
            1..=20 => {
                let index = rand() as usize % DLLS.len();
                batch.image_load_at(
                    origin,
                    &format!(
                        "\\Device\\HarddiskVolume3\\Windows\\System32\\{}",
                        DLLS[index]
                    ),
                    dll_base(index),
                    DLL_SIZE,
                    12,
                );
            }
            21..=50 => batch.file_create(origin, &file, if r < 30 { 2 } else { 1 }),
            51..=70 => batch.file_write(origin, &file),
            71..=90 => batch.file_close_modified(origin, &file),
            91..=94 => batch.file_rename(origin, &file, &format!("{file}.bak")),
            // A process opened from an 8 to 16-frame call trace: frames in
            // the DLLs above, the last one in memory no image backs.
            95..=96 => {
                let depth = 8 + rand() as usize % 9;
                let mut frames: Vec<u64> = (0..depth - 1)
                    .map(|_| dll_base(rand() as usize % DLLS.len()) + u64::from(rand()) % DLL_SIZE)
                    .collect();
                frames.push(0x1a4_c8e7_0000 + u64::from(rand() % 0x1000));
                let target = live[rand() as usize % live.len()];
                batch.process_access(origin, target, 0x1410, &frames);
            }
            _ => batch.file_delete(origin, &file),
        }
        written = batch.records;
        if batch.len() >= 16 * 1024 {
            writer.batch(time, &batch.take())?;
        }
    }
    if !batch.is_empty() {
        writer.batch(time, &batch.take())?;
    }
    writer.finish()?;
    Ok(written)
}
