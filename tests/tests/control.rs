//! The control device under hostile input and access rules: every malformed
//! request gets the status `ControlError::status()` documents, a seeded
//! random sweep over the IOCTL surface finds nothing, and the driver keeps
//! delivering events afterwards. Access: administrators only, one consumer,
//! and closing the consumer cancels its pending READs.

use ringside_kmodel::Machine;
use ringside_kmodel::agent::{Handle, Sent, connected};
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::file_io::{FILE_CREATED, FILE_WRITE_DATA, Requestor};
use ringside_wire::ioctl::*;
use ringside_wire::{ABI_VERSION, Record, Records};
use zerocopy::IntoBytes;

fn config() -> ConfigureRequest {
    ConfigureRequest {
        batch_bytes: 1,
        max_latency_ms: 1,
        ..ConfigureRequest::default()
    }
}

fn hello() -> HelloRequest {
    HelloRequest {
        size: 16,
        abi_version: ABI_VERSION,
        agent_version: 1 << 16,
        _pad: 0,
    }
}

fn status_of(m: &mut Machine, h: Handle, code: u32, input: &[u8], out: u32) -> i32 {
    m.ioctl_now(h, code, input, out)
        .unwrap_or_else(|e| panic!("IOCTL {code:#x}: {e}"))
        .status
}

/// A file create goes in and comes out of READ: the driver still works.
fn assert_event_still_arrives(m: &mut Machine, h: Handle, tag: &str) {
    let name = format!(r"\Device\HarddiskVolume3\after-{tag}.txt");
    let f = m.new_file_object(&name);
    m.file_create(
        Requestor { pid: 700, tid: 704 },
        f,
        FILE_WRITE_DATA,
        0,
        0,
        FILE_CREATED,
    )
    .expect("create");
    m.free_file_object(f);
    let batches = m.drain(h).expect("drain");
    let bytes = batches.concat();
    let names: Vec<String> = Records::new(&bytes)
        .filter_map(|r| match r.expect("decodes") {
            Record::FileCreate(e) => Some(e.name().chars().collect()),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec![name], "after {tag}");
}

#[test]
fn malformed_requests_get_the_documented_status_and_the_driver_keeps_working() {
    let sys = ringside_sys().expect("build ringside.sys");
    let mut m = Machine::load(sys).expect("load");
    assert_eq!(m.driver_entry().expect("DriverEntry"), 0);
    let (_, h) = m.open_device(true).expect("open");
    let h = h.expect("admin open");

    // Before HELLO: READ, CONFIGURE and STATS are refused.
    let not_negotiated = ControlError::NotNegotiated.status();
    assert_eq!(
        status_of(&mut m, h, IOCTL_READ, &[], READ_MIN_BUFFER),
        not_negotiated,
        "READ before HELLO"
    );
    assert_eq!(
        status_of(&mut m, h, IOCTL_CONFIGURE, config().as_bytes(), 0),
        not_negotiated,
        "CONFIGURE before HELLO"
    );

    // HELLO: wrong lengths, wrong size field, wrong ABI, small output.
    let mut wrong_abi = hello();
    wrong_abi.abi_version = ABI_VERSION + 1;
    let mut wrong_size = hello();
    wrong_size.size = 12;
    let mut huge = hello().as_bytes().to_vec();
    huge.resize(70_000, 0xAA);
    let cases: Vec<(&str, Vec<u8>, u32)> = vec![
        ("short", hello().as_bytes()[..8].to_vec(), 32),
        ("empty", Vec::new(), 32),
        ("huge", huge, 32),
        ("size field", wrong_size.as_bytes().to_vec(), 32),
        ("abi", wrong_abi.as_bytes().to_vec(), 32),
    ];
    for (what, input, out) in cases {
        let expected = parse_hello(&input).expect_err(what).status();
        assert_eq!(
            status_of(&mut m, h, IOCTL_HELLO, &input, out),
            expected,
            "HELLO {what}"
        );
    }
    assert_eq!(
        status_of(&mut m, h, IOCTL_HELLO, hello().as_bytes(), 31),
        ControlError::OutputTooSmall {
            needed: 32,
            got: 31
        }
        .status(),
        "HELLO output too small"
    );
    assert_eq!(
        status_of(&mut m, h, IOCTL_HELLO, hello().as_bytes(), 32),
        0,
        "HELLO"
    );

    // Unknown codes: new functions, a known function with another method or access.
    for code in [
        ctl_code(DEVICE_TYPE, 0x804, METHOD_BUFFERED, FILE_ANY_ACCESS),
        ctl_code(DEVICE_TYPE, 0x7ff, METHOD_BUFFERED, FILE_ANY_ACCESS),
        IOCTL_READ & !3,
        IOCTL_HELLO | 3,
        ctl_code(0x22, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS),
        0,
        u32::MAX,
    ] {
        let expected = ControlError::UnknownCode { code }.status();
        assert_eq!(
            status_of(&mut m, h, code, &[0; 16], 64),
            expected,
            "code {code:#x}"
        );
    }

    // CONFIGURE: each field out of range, wrong length, wrong ABI.
    let bad: Vec<(&str, ConfigureRequest)> = vec![
        (
            "mask",
            ConfigureRequest {
                event_mask: 1 << 20,
                ..config()
            },
        ),
        (
            "registry data cap odd",
            ConfigureRequest {
                max_registry_data_bytes: 1,
                ..config()
            },
        ),
        (
            "registry data cap high",
            ConfigureRequest {
                max_registry_data_bytes: 1 << 20,
                ..config()
            },
        ),
        (
            "name cap low",
            ConfigureRequest {
                max_name_bytes: 2,
                ..config()
            },
        ),
        (
            "name cap odd",
            ConfigureRequest {
                max_name_bytes: 1001,
                ..config()
            },
        ),
        (
            "name cap high",
            ConfigureRequest {
                max_name_bytes: 1 << 20,
                ..config()
            },
        ),
        (
            "command line cap",
            ConfigureRequest {
                max_command_line_bytes: u32::MAX,
                ..config()
            },
        ),
        (
            "batch 0",
            ConfigureRequest {
                batch_bytes: 0,
                ..config()
            },
        ),
        (
            "batch high",
            ConfigureRequest {
                batch_bytes: READ_MIN_BUFFER + 1,
                ..config()
            },
        ),
        (
            "latency 0",
            ConfigureRequest {
                max_latency_ms: 0,
                ..config()
            },
        ),
        (
            "latency high",
            ConfigureRequest {
                max_latency_ms: 51,
                ..config()
            },
        ),
        (
            "size field",
            ConfigureRequest {
                size: 28,
                ..config()
            },
        ),
        (
            "abi",
            ConfigureRequest {
                abi_version: 0,
                ..config()
            },
        ),
    ];
    for (what, request) in bad {
        let expected = parse_configure(request.as_bytes())
            .expect_err(what)
            .status();
        assert_eq!(
            status_of(&mut m, h, IOCTL_CONFIGURE, request.as_bytes(), 0),
            expected,
            "CONFIGURE {what}"
        );
    }
    let full = config();
    let short = &full.as_bytes()[..31];
    assert_eq!(
        status_of(&mut m, h, IOCTL_CONFIGURE, short, 0),
        parse_configure(short).expect_err("short").status(),
        "CONFIGURE short"
    );
    assert_eq!(
        status_of(&mut m, h, IOCTL_CONFIGURE, config().as_bytes(), 0),
        0,
        "CONFIGURE"
    );

    // READ with a small buffer; STATS with a small buffer.
    for len in [0, 1, READ_MIN_BUFFER - 1] {
        let expected = check_read_buffer(len as usize).expect_err("small").status();
        assert_eq!(
            status_of(&mut m, h, IOCTL_READ, &[], len),
            expected,
            "READ of {len} bytes"
        );
    }
    assert_eq!(
        status_of(&mut m, h, IOCTL_STATS, &[], 100),
        check_output::<StatsResponse>(100)
            .expect_err("small")
            .status(),
        "STATS output too small"
    );
    m.assert_clean();

    // A READ into a user buffer at an odd address (MDL ByteOffset 3) works.
    let f = m.new_file_object(r"\Device\HarddiskVolume3\odd.txt");
    m.file_create(
        Requestor { pid: 700, tid: 704 },
        f,
        FILE_WRITE_DATA,
        0,
        0,
        FILE_CREATED,
    )
    .expect("create");
    m.free_file_object(f);
    match m
        .ioctl_with_user_offset(h, IOCTL_READ, &[], READ_MIN_BUFFER, 3)
        .expect("READ")
    {
        Sent::Done(c) => {
            assert_eq!(c.status, 0);
            let n = Records::new(&c.output)
                .inspect(|r| assert!(r.is_ok(), "decodes: {r:?}"))
                .count();
            assert_eq!(n, 1);
        }
        Sent::Pending(irp) => panic!("READ pended with an event committed ({irp:#x})"),
    }

    assert_event_still_arrives(&mut m, h, "malformed requests");
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

/// xorshift64*: a deterministic generator for the sweep.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn seeded_sweep_of_two_thousand_requests_finds_nothing() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &config()).expect("session");
    let mut rng = Rng(0x005e_ed0f_2026);
    let known = [IOCTL_HELLO, IOCTL_CONFIGURE, IOCTL_READ, IOCTL_STATS];
    let documented = [
        status::SUCCESS,
        status::INVALID_DEVICE_REQUEST,
        status::INFO_LENGTH_MISMATCH,
        status::BUFFER_TOO_SMALL,
        status::REVISION_MISMATCH,
        status::INVALID_PARAMETER,
        status::INVALID_DEVICE_STATE,
    ];
    let mut outcomes = std::collections::BTreeMap::new();
    for i in 0..2000 {
        let code = match rng.below(4) {
            0 => rng.next() as u32,
            1 => known[rng.below(4) as usize] ^ (1 << rng.below(32)),
            _ => known[rng.below(4) as usize],
        };
        let input_len = match rng.below(6) {
            0 => 0,
            1 => 16,
            2 => 32,
            3 => rng.below(64) as usize,
            4 => 4096 + rng.below(4096) as usize,
            _ => rng.below(40) as usize,
        };
        let mut input: Vec<u8> = (0..input_len).map(|_| rng.next() as u8).collect();
        // Often a structurally valid header (size, ABI) with random fields,
        // so the sweep reaches field validation, not only length checks.
        if input.len() >= 8 && rng.below(2) == 0 {
            let size = if code == IOCTL_HELLO { 16u32 } else { 32 };
            input[..4].copy_from_slice(&size.to_le_bytes());
            input[4..8].copy_from_slice(&ABI_VERSION.to_le_bytes());
        }
        let output_len = match rng.below(5) {
            0 => 0,
            1 => rng.below(512) as u32,
            2 => READ_MIN_BUFFER,
            3 => READ_MIN_BUFFER + rng.below(8192) as u32,
            _ => 288,
        };
        let offset = rng.below(8);
        let status = match m.ioctl_with_user_offset(h, code, &input, output_len, offset) {
            Ok(Sent::Done(c)) => c.status,
            Ok(Sent::Pending(irp)) => {
                assert!(m.cancel(irp), "request {i}: pending IRP not cancellable");
                let c = m.take_completion(irp).expect("cancelled IRP completed");
                assert_eq!(c.status, status::CANCELLED, "request {i}");
                status::PENDING
            }
            Err(e) => panic!("request {i} (code {code:#x}, {input_len} in, {output_len} out): {e}"),
        };
        assert!(
            status == status::PENDING || documented.contains(&status),
            "request {i} (code {code:#x}): undocumented status {status:#x}"
        );
        *outcomes.entry(status).or_insert(0u32) += 1;
        if !m.findings().is_empty() {
            m.assert_clean();
        }
    }
    // The sweep reached success, length, field and code checks, not just one.
    for s in [
        status::SUCCESS,
        status::INVALID_DEVICE_REQUEST,
        status::INFO_LENGTH_MISMATCH,
        status::INVALID_PARAMETER,
    ] {
        assert!(
            outcomes.get(&s).copied().unwrap_or(0) > 0,
            "status {s:#x} never produced: {outcomes:x?}"
        );
    }
    // Random CONFIGUREs may have succeeded: restore the agent's settings.
    assert_eq!(
        status_of(&mut m, h, IOCTL_CONFIGURE, config().as_bytes(), 0),
        0
    );
    assert_event_still_arrives(&mut m, h, "the sweep");
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

#[test]
fn non_admin_and_second_consumer_are_denied() {
    let sys = ringside_sys().expect("build ringside.sys");
    let mut m = Machine::load(sys).expect("load");
    assert_eq!(m.driver_entry().expect("DriverEntry"), 0);
    let (status, handle) = m.open_device(false).expect("open as user");
    assert_eq!(status, status::ACCESS_DENIED);
    assert!(handle.is_none());
    let (status, first) = m.open_device(true).expect("open as admin");
    assert_eq!(status, 0);
    let first = first.expect("handle");
    let (status, second) = m.open_device(true).expect("second open");
    assert_eq!(status, status::SHARING_VIOLATION, "second consumer");
    assert!(second.is_none());
    // Once the first consumer closed, a new one may connect.
    m.close_device(first).expect("close");
    let (status, again) = m.open_device(true).expect("reopen");
    assert_eq!(status, 0);
    m.close_device(again.expect("handle")).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

#[test]
fn closing_the_consumer_cancels_its_pending_reads() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(
        sys,
        &ConfigureRequest {
            batch_bytes: 4096,
            max_latency_ms: 50,
            ..config()
        },
    )
    .expect("session");
    let mut pending = Vec::new();
    for _ in 0..3 {
        match m.ioctl(h, IOCTL_READ, &[], READ_MIN_BUFFER).expect("READ") {
            Sent::Pending(irp) => pending.push(irp),
            Sent::Done(c) => panic!("READ with nothing to read completed: {:#x}", c.status),
        }
    }
    assert_eq!(m.stats(h).expect("stats").stats.reads_pending, 3);
    m.close_device(h).expect("close");
    for irp in pending {
        let c = m
            .take_completion(irp)
            .expect("pending READ completed at cleanup");
        assert_eq!(c.status, status::CANCELLED);
        assert!(c.output.is_empty());
    }
    m.assert_clean();
    m.unload().expect("unload");
    m.assert_clean();
}
