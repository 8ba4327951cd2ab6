//! The process table: what the agent knows about each process instance, so
//! that every event can name its process's image, user and stable GUID, and a
//! process creation can name its parent's.
//!
//! Owned by the pipeline, not by a source, so it survives a reconnect to the
//! driver. Memory is bounded:
//! - an exited process stays for [`EXIT_GRACE`] of *event* time (late events,
//!   e.g. a file close after the exit callback, still resolve), then goes;
//! - the table never holds more than its capacity (default
//!   [`DEFAULT_CAPACITY`]) nor more than [`BYTE_BUDGET`] bytes of strings
//!   (command lines can be 32 KB each): past either, exited entries are
//!   evicted oldest first, and if every entry is live the oldest-created live
//!   entry is evicted and counted ([`TableCounters::evicted_live`]), found in
//!   O(log n) through an index of live entries by creation time. A process
//!   whose exit was missed thus goes once newer ones need its room;
//! - the queue of exits is as bounded as the table: a repeated exit of an
//!   already exited entry adds nothing, and a queue longer than the capacity
//!   drops its oldest entry.
//!
//! Event time rather than wall-clock time drives expiry so a replay behaves
//! the same at any speed.

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::time::TICKS_PER_SECOND;

/// How long an exited process stays resolvable (event time).
pub const EXIT_GRACE: u64 = 30 * TICKS_PER_SECOND;
/// Default upper bound on entries.
pub const DEFAULT_CAPACITY: usize = 65_536;
/// Upper bound on what the entries hold, in bytes (their strings plus
/// [`ENTRY_OVERHEAD`] each).
pub const BYTE_BUDGET: usize = 64 << 20;
/// What an entry costs besides its strings (the struct, the indexes).
const ENTRY_OVERHEAD: usize = 256;

/// A Sysmon-style process GUID: `{MMMMMMMM-SSSS-SSSS-FFFF-FFPPPPPPPPPP}` where
/// M is the machine id, S the creation time in Unix seconds, F the sub-second
/// part of the creation time (100 ns units) and P the pid. Two instances with
/// the same pid differ in creation time, so pid reuse cannot collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcessGuid(pub [u8; 16]);

impl ProcessGuid {
    /// The GUID of the process instance (machine, pid, creation FILETIME).
    pub fn new(machine: u32, pid: u32, create_time: u64) -> Self {
        let unix = (create_time / TICKS_PER_SECOND)
            .saturating_sub(crate::time::UNIX_EPOCH_FILETIME / TICKS_PER_SECOND);
        let seconds = u32::try_from(unix).unwrap_or(u32::MAX);
        let sub = (create_time % TICKS_PER_SECOND) as u32; // < 2^24
        let mut bytes = [0u8; 16];
        bytes[0..4].copy_from_slice(&machine.to_be_bytes());
        bytes[4..8].copy_from_slice(&seconds.to_be_bytes());
        bytes[8..11].copy_from_slice(&sub.to_be_bytes()[1..]);
        bytes[11] = 0;
        bytes[12..16].copy_from_slice(&pid.to_be_bytes());
        ProcessGuid(bytes)
    }

    /// Sysmon's `LogonGuid` for the logon session `logon_id` (the token's
    /// `AuthenticationId`, `HighPart << 32 | LowPart`) on machine `machine`,
    /// written in the same text form as a ProcessGuid ([`Self::write`]).
    ///
    /// The layout, read off every event 1 among SigmaHQ's regression samples
    /// (139 events, 25 logon sessions, 4 machines), e.g. `LogonId` `0x529ae3`
    /// with `LogonGuid` `{5AA13A44-568F-68FB-E39A-520000000000}` and
    /// ProcessGuid `{5AA13A44-ADCF-68FE-...}`, or `0x7e2aa` with
    /// `{0197231E-5032-6940-AAE2-070000000000}`:
    /// - the first group is the machine's, the same as in its ProcessGuids;
    /// - the last 8 bytes are the LUID's 8 bytes in memory order (LowPart
    ///   then HighPart, little-endian): `E39A-520000000000` is 0x00529ae3;
    /// - groups 2 and 3 are a Unix time in seconds (low 16 bits, then high
    ///   16) that Sysmon takes from the logon session, not from the token:
    ///   TOKEN_STATISTICS has no time, and the samples' values are not even
    ///   reliably before the events (`0x7e2aa`: 2025-12-15 18:15 UTC on
    ///   events of 11:26 UTC). ringside writes `0000-0000` there rather than
    ///   a time it would have to invent.
    ///
    /// So one session gives one LogonGuid on one machine, and the SYSTEM
    /// session (`0x3e7`) is `{MMMMMMMM-0000-0000-E703-000000000000}`.
    pub fn logon(machine: u32, logon_id: u64) -> Self {
        let mut bytes = [0u8; 16];
        bytes[0..4].copy_from_slice(&machine.to_be_bytes());
        bytes[8..16].copy_from_slice(&logon_id.to_le_bytes());
        ProcessGuid(bytes)
    }

    /// Appends the braced, upper-case text form Sysmon uses (hand-formatted:
    /// it is written for nearly every event).
    pub fn write(&self, out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        out.push('{');
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        out.push('}');
    }
}

impl std::fmt::Display for ProcessGuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::with_capacity(38);
        self.write(&mut s);
        f.write_str(&s)
    }
}

/// What is known about one process instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub guid: ProcessGuid,
    /// Creation FILETIME (for placeholders: when the agent first saw the pid).
    pub create_time: u64,
    /// False for placeholders: processes that existed before the sensor saw
    /// their creation; image, command line and user are then unknown.
    pub known: bool,
    /// DOS path of the image.
    pub image: String,
    pub command_line: String,
    /// Account name (or SID text when it cannot be resolved).
    pub user: String,
    pub integrity_level: String,
    pub parent_pid: u32,
    pub parent_guid: Option<ProcessGuid>,
    /// Exit FILETIME once the process exited.
    pub exit_time: Option<u64>,
}

/// Table bookkeeping, reported in stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCounters {
    pub created: u64,
    pub exited: u64,
    /// Events for a pid the table did not know (a placeholder was made).
    pub placeholders: u64,
    /// A creation for a pid whose previous instance never reported its exit.
    pub replaced_live: u64,
    pub expired: u64,
    pub evicted_exited: u64,
    pub evicted_live: u64,
}

/// The process table.
#[derive(Debug)]
pub struct ProcessTable {
    machine: u32,
    capacity: usize,
    by_pid: HashMap<u32, ProcessInfo>,
    /// Live entries by (creation time, pid): the oldest is evicted first.
    live: BTreeSet<(u64, u32)>,
    /// (exit time, pid, guid) in exit order; an entry is stale if the pid now
    /// holds another instance (checked by GUID).
    exits: VecDeque<(u64, u32, ProcessGuid)>,
    /// What the entries cost, in bytes (see [`BYTE_BUDGET`]).
    bytes: usize,
    pub counters: TableCounters,
}

fn cost(info: &ProcessInfo) -> usize {
    ENTRY_OVERHEAD
        + info.image.len()
        + info.command_line.len()
        + info.user.len()
        + info.integrity_level.len()
}

/// The facts of a process creation, as the pipeline extracted them.
#[derive(Debug)]
pub struct NewProcess {
    pub pid: u32,
    pub parent_pid: u32,
    pub create_time: u64,
    pub image: String,
    pub command_line: String,
    pub user: String,
    pub integrity_level: String,
}

impl ProcessTable {
    /// An empty table for `machine` (the first GUID group) holding at most
    /// `capacity` entries (at least 1).
    pub fn new(machine: u32, capacity: usize) -> Self {
        ProcessTable {
            machine,
            capacity: capacity.max(1),
            by_pid: HashMap::new(),
            live: BTreeSet::new(),
            exits: VecDeque::new(),
            bytes: 0,
            counters: TableCounters::default(),
        }
    }

    /// Entries currently held (live and recently exited).
    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    /// True if the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }

    /// What the entries cost now, in bytes (at most [`BYTE_BUDGET`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Exits waiting for their grace period to end (at most the capacity).
    pub fn pending_exits(&self) -> usize {
        self.exits.len()
    }

    /// The entry for `pid`, if any.
    pub fn get(&self, pid: u32) -> Option<&ProcessInfo> {
        self.by_pid.get(&pid)
    }

    /// Records a creation and returns the new entry. The parent's GUID comes
    /// from the table (a placeholder is made for an unknown parent so the
    /// parent GUID is stable across its children).
    pub fn create(&mut self, new: NewProcess) -> &ProcessInfo {
        self.expire(new.create_time);
        let parent_guid = if new.parent_pid == 0 || new.parent_pid == new.pid {
            None
        } else {
            Some(self.lookup(new.parent_pid, new.create_time).guid)
        };
        if let Some(old) = self.remove(new.pid) {
            if old.exit_time.is_none() {
                self.counters.replaced_live += 1;
            }
        }
        self.counters.created += 1;
        let info = ProcessInfo {
            pid: new.pid,
            guid: ProcessGuid::new(self.machine, new.pid, new.create_time),
            create_time: new.create_time,
            known: true,
            image: new.image,
            command_line: new.command_line,
            user: new.user,
            integrity_level: new.integrity_level,
            parent_pid: new.parent_pid,
            parent_guid,
            exit_time: None,
        };
        self.insert(info)
    }

    /// The entry for `pid`, making a placeholder (first seen at `time`) if the
    /// table does not know it.
    pub fn lookup(&mut self, pid: u32, time: u64) -> &ProcessInfo {
        if self.by_pid.contains_key(&pid) {
            return &self.by_pid[&pid];
        }
        self.counters.placeholders += 1;
        let info = ProcessInfo {
            pid,
            guid: ProcessGuid::new(self.machine, pid, time),
            create_time: time,
            known: false,
            image: String::new(),
            command_line: String::new(),
            user: String::new(),
            integrity_level: String::new(),
            parent_pid: 0,
            parent_guid: None,
            exit_time: None,
        };
        self.insert(info)
    }

    /// Marks `pid` exited at `time` and returns its entry (kept for
    /// [`EXIT_GRACE`]). A repeated exit changes nothing.
    pub fn exit(&mut self, pid: u32, time: u64) -> &ProcessInfo {
        self.expire(time);
        self.counters.exited += 1;
        let (guid, create_time, live) = {
            let entry = self.lookup(pid, time);
            (entry.guid, entry.create_time, entry.exit_time.is_none())
        };
        if live {
            self.live.remove(&(create_time, pid));
            if let Some(entry) = self.by_pid.get_mut(&pid) {
                entry.exit_time = Some(time);
            }
            self.exits.push_back((time, pid, guid));
            // More exits queued than entries can exist: the oldest goes.
            while self.exits.len() > self.capacity {
                if let Some((_, pid, guid)) = self.exits.pop_front() {
                    if self.remove_exited(pid, guid) {
                        self.counters.evicted_exited += 1;
                    }
                }
            }
        }
        &self.by_pid[&pid]
    }

    /// Removes exited entries whose grace period ended before `now`.
    pub fn expire(&mut self, now: u64) {
        while let Some(&(exit_time, pid, guid)) = self.exits.front() {
            if exit_time.saturating_add(EXIT_GRACE) > now {
                break;
            }
            self.exits.pop_front();
            if self.remove_exited(pid, guid) {
                self.counters.expired += 1;
            }
        }
    }

    /// Makes room for `info` and adds it.
    fn insert(&mut self, info: ProcessInfo) -> &ProcessInfo {
        self.make_room(cost(&info));
        self.bytes += cost(&info);
        if info.exit_time.is_none() {
            self.live.insert((info.create_time, info.pid));
        }
        self.by_pid.entry(info.pid).insert_entry(info).into_mut()
    }

    /// Removes `pid`'s entry from the table and its indexes.
    fn remove(&mut self, pid: u32) -> Option<ProcessInfo> {
        let info = self.by_pid.remove(&pid)?;
        self.bytes -= cost(&info);
        if info.exit_time.is_none() {
            self.live.remove(&(info.create_time, pid));
        }
        Some(info)
    }

    /// Removes `pid` if it still holds the exited instance `guid`.
    fn remove_exited(&mut self, pid: u32, guid: ProcessGuid) -> bool {
        match self.by_pid.get(&pid) {
            Some(entry) if entry.guid == guid && entry.exit_time.is_some() => {
                self.remove(pid);
                true
            }
            _ => false,
        }
    }

    /// Evicts until one more entry of `incoming` bytes fits within the
    /// capacity and the byte budget: exited entries first (oldest exit),
    /// then the oldest-created live one.
    fn make_room(&mut self, incoming: usize) {
        while !self.by_pid.is_empty()
            && (self.by_pid.len() >= self.capacity || self.bytes + incoming > BYTE_BUDGET)
        {
            if let Some((_, pid, guid)) = self.exits.pop_front() {
                if self.remove_exited(pid, guid) {
                    self.counters.evicted_exited += 1;
                }
                continue;
            }
            // Every entry is live: the table is full of processes whose exit
            // was never seen.
            match self.live.first().copied() {
                Some((_, pid)) => {
                    self.remove(pid);
                    self.counters.evicted_live += 1;
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::filetime_from_unix;

    fn new(pid: u32, parent: u32, t: u64, image: &str) -> NewProcess {
        NewProcess {
            pid,
            parent_pid: parent,
            create_time: t,
            image: image.into(),
            command_line: format!("{image} /x"),
            user: "u".into(),
            integrity_level: "High".into(),
        }
    }

    #[test]
    fn logon_guid_has_sysmons_machine_group_and_luid_bytes() {
        // Real Sysmon pairs (SigmaHQ regression samples), less the time
        // groups ringside cannot know.
        for (machine, logon_id, sysmon) in [
            (
                0x5AA1_3A44,
                0x0052_9ae3,
                "{5AA13A44-568F-68FB-E39A-520000000000}",
            ),
            (
                0x0197_231E,
                0x0007_e2aa,
                "{0197231E-5032-6940-AAE2-070000000000}",
            ),
            (
                0x0197_231E,
                0x0194_8260,
                "{0197231E-90B7-6A61-6082-940100000000}",
            ),
            (0x5AA1_3A44, 0x3e7, "{5AA13A44-0C8E-68FC-E703-000000000000}"),
        ] {
            let ours = ProcessGuid::logon(machine, logon_id).to_string();
            assert_eq!(ours[..10], sysmon[..10], "machine group");
            assert_eq!(&ours[10..20], "0000-0000-", "no time is invented");
            assert_eq!(ours[20..], sysmon[20..], "the LUID's bytes");
        }
        // HighPart is the second half of the last 8 bytes.
        assert_eq!(
            ProcessGuid::logon(1, 0x0000_0002_0000_0001).to_string(),
            "{00000001-0000-0000-0100-000002000000}"
        );
    }

    #[test]
    fn guid_is_stable_per_instance_and_differs_on_pid_reuse() {
        let t0 = filetime_from_unix(1_795_256_130);
        let mut table = ProcessTable::new(0x1234_5678, 16);
        let a = table.create(new(100, 4, t0, "a.exe")).guid;
        assert_eq!(table.lookup(100, t0 + 5).guid, a);
        assert_eq!(a.to_string().len(), 38);
        assert!(a.to_string().starts_with("{12345678-"));
        assert_eq!(
            ProcessGuid([0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff]).to_string(),
            "{AB010203-0405-0607-0809-0A0B0C0D0EFF}"
        );
        table.exit(100, t0 + 10);
        let b = table.create(new(100, 4, t0 + 20, "b.exe")).guid;
        assert_ne!(a, b);
        assert_eq!(table.get(100).map(|e| e.image.as_str()), Some("b.exe"));
        // The parent (pid 4) became one placeholder, shared by both children.
        assert_eq!(table.counters.placeholders, 1);
        assert_eq!(
            table.get(100).and_then(|e| e.parent_guid),
            Some(table.get(4).expect("parent").guid)
        );
    }

    #[test]
    fn exited_entries_expire_after_the_grace_period() {
        let t0 = filetime_from_unix(1_000_000);
        let mut table = ProcessTable::new(1, 16);
        table.create(new(8, 0, t0, "x.exe"));
        table.exit(8, t0 + 1);
        table.expire(t0 + EXIT_GRACE);
        assert!(table.get(8).is_some(), "still within grace");
        table.expire(t0 + 1 + EXIT_GRACE);
        assert!(table.get(8).is_none());
        assert_eq!(table.counters.expired, 1);
    }

    #[test]
    fn capacity_is_enforced_exited_first_then_oldest_live() {
        let t0 = filetime_from_unix(1_000_000);
        let mut table = ProcessTable::new(1, 3);
        for pid in 1..=3 {
            table.create(new(pid, 0, t0 + u64::from(pid), "p"));
        }
        table.exit(2, t0 + 10);
        table.create(new(4, 0, t0 + 11, "p"));
        assert_eq!(table.len(), 3);
        assert!(table.get(2).is_none(), "the exited entry goes first");
        table.create(new(5, 0, t0 + 12, "p"));
        assert_eq!(table.len(), 3);
        assert!(table.get(1).is_none(), "then the oldest live one");
        assert_eq!(table.counters.evicted_exited, 1);
        assert_eq!(table.counters.evicted_live, 1);
        for pid in 6..1000 {
            table.lookup(pid, t0 + u64::from(pid));
            assert!(table.len() <= 3);
        }
    }

    #[test]
    fn repeated_exits_with_no_time_passing_do_not_grow_the_exit_queue() {
        let t0 = filetime_from_unix(1_000_000);
        let mut table = ProcessTable::new(1, 64);
        // A replay of the same exits over and over, event time standing still.
        for round in 0..10_000 {
            let pid = round % 100;
            table.exit(pid, t0);
            if round % 3 == 0 {
                // And pids reused: created again, exited again.
                table.create(new(pid, 0, t0, "p"));
            }
        }
        assert!(table.pending_exits() <= 64, "{}", table.pending_exits());
        assert!(table.len() <= 64);
    }

    #[test]
    fn a_full_table_evicts_the_oldest_live_entry_for_each_new_pid() {
        let t0 = filetime_from_unix(1_000_000);
        let mut table = ProcessTable::new(1, 1000);
        // 200k pids whose exits are never seen: every one past the capacity
        // evicts the oldest-created (O(log n) each: this once took minutes).
        for pid in 0..200_000u32 {
            table.create(new(pid, 0, t0 + u64::from(pid), "p"));
            assert!(table.len() <= 1000);
        }
        assert_eq!(table.counters.evicted_live, 199_000);
        assert!(table.get(198_999).is_none(), "older ones went");
        assert!(table.get(199_000).is_some() && table.get(199_999).is_some());
    }

    #[test]
    fn the_table_is_bounded_in_bytes_not_only_in_entries() {
        let t0 = filetime_from_unix(1_000_000);
        let mut table = ProcessTable::new(1, DEFAULT_CAPACITY);
        // 60,000 processes with 32,000-character command lines would take
        // ~2 GB; the byte budget keeps the newest ones only.
        for pid in 0..60_000u32 {
            let mut p = new(pid, 0, t0 + u64::from(pid), "p");
            p.command_line = "x".repeat(32_000);
            table.create(p);
            assert!(table.bytes() <= BYTE_BUDGET);
        }
        assert!(
            table.len() < 60_000 && table.len() > 1000,
            "{}",
            table.len()
        );
        assert!(table.get(59_999).is_some(), "the newest stays");
        assert!(table.counters.evicted_live > 0);
    }
}
