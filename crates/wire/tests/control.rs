//! The IOCTL contract: codes, sizes, and field-by-field validation.

use ringside_wire::ABI_VERSION;
use ringside_wire::ioctl::*;
use ringside_wire::kind::ALL_EVENTS_MASK;
use ringside_wire::replay::{self, FileHeader, FrameKind, Frames, ReplayError};
use ringside_wire::{EVENT_KIND_COUNT, EventKind};
use zerocopy::IntoBytes;

#[test]
fn codes_follow_ctl_code() {
    // CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS) is the classic 0x222000.
    assert_eq!(
        ctl_code(0x22, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS),
        0x0022_2000
    );
    assert_eq!(IOCTL_READ & 3, METHOD_OUT_DIRECT);
    assert_eq!((IOCTL_CONFIGURE >> 14) & 3, FILE_WRITE_ACCESS);
    for code in [IOCTL_HELLO, IOCTL_CONFIGURE, IOCTL_READ, IOCTL_STATS] {
        assert_eq!(code >> 16, DEVICE_TYPE);
        assert!(Request::try_from(code).is_ok());
    }
    assert_eq!(
        Request::try_from(0x0022_2000),
        Err(ControlError::UnknownCode { code: 0x0022_2000 })
    );
}

fn hello(size: u32, abi_version: u32) -> Vec<u8> {
    HelloRequest {
        size,
        abi_version,
        agent_version: 0x0001_0000,
        _pad: 0,
    }
    .as_bytes()
    .to_vec()
}

#[test]
fn hello_checks_length_size_and_version() {
    assert!(parse_hello(&hello(16, ABI_VERSION)).is_ok());
    assert_eq!(
        parse_hello(&hello(16, ABI_VERSION)[..15]),
        Err(ControlError::InputLength {
            expected: 16,
            got: 15
        })
    );
    let mut long = hello(16, ABI_VERSION);
    long.push(0);
    assert_eq!(
        parse_hello(&long),
        Err(ControlError::InputLength {
            expected: 16,
            got: 17
        })
    );
    assert_eq!(
        parse_hello(&hello(12, ABI_VERSION)),
        Err(ControlError::StructSize {
            expected: 16,
            got: 12
        })
    );
    let mismatch = parse_hello(&hello(16, ABI_VERSION + 1)).unwrap_err();
    assert_eq!(
        mismatch,
        ControlError::AbiMismatch {
            driver: ABI_VERSION,
            caller: ABI_VERSION + 1
        }
    );
    assert_eq!(mismatch.status(), status::REVISION_MISMATCH);
}

#[test]
fn configure_checks_every_field() {
    let good = ConfigureRequest::default();
    let config = parse_configure(good.as_bytes()).expect("the default is valid");
    assert_eq!(config, Config::default());
    // Every kind but FileWrite, FileCloseModified and ProcessAccess, which
    // the agent must ask for.
    let unasked = EventKind::FileWrite.mask_bit()
        | EventKind::FileCloseModified.mask_bit()
        | EventKind::ProcessAccess.mask_bit();
    assert_eq!(config.event_mask, ALL_EVENTS_MASK & !unasked);

    type Mutation = fn(&mut ConfigureRequest);
    let cases: [(Mutation, ConfigField); 12] = [
        (
            |r| r.event_mask = 1 << EVENT_KIND_COUNT,
            ConfigField::EventMask,
        ),
        (|r| r.max_name_bytes = 62, ConfigField::MaxNameBytes),
        (
            |r| r.max_name_bytes = 16 * 1024 + 2,
            ConfigField::MaxNameBytes,
        ),
        (|r| r.max_name_bytes = 1025, ConfigField::MaxNameBytes),
        (
            |r| r.max_command_line_bytes = 32 * 1024 + 2,
            ConfigField::MaxCommandLineBytes,
        ),
        (|r| r.batch_bytes = 0, ConfigField::BatchBytes),
        (|r| r.max_latency_ms = 0, ConfigField::MaxLatencyMs),
        (|r| r.max_latency_ms = 51, ConfigField::MaxLatencyMs),
        (
            |r| r.max_registry_data_bytes = 1,
            ConfigField::MaxRegistryDataBytes,
        ),
        (
            |r| r.max_registry_data_bytes = 62,
            ConfigField::MaxRegistryDataBytes,
        ),
        (
            |r| r.max_registry_data_bytes = 1025,
            ConfigField::MaxRegistryDataBytes,
        ),
        (
            |r| r.max_registry_data_bytes = 16 * 1024 + 2,
            ConfigField::MaxRegistryDataBytes,
        ),
    ];
    for (mutate, field) in cases {
        let mut request = good;
        mutate(&mut request);
        let error = parse_configure(request.as_bytes()).unwrap_err();
        assert!(
            matches!(error, ControlError::InvalidField { field: f, .. } if f == field),
            "{error:?}"
        );
        assert_eq!(error.status(), status::INVALID_PARAMETER);
    }
    // Range ends are inclusive.
    let mut edge = good;
    edge.max_name_bytes = 16 * 1024;
    edge.max_command_line_bytes = 64;
    edge.max_latency_ms = 50;
    edge.event_mask = 0;
    edge.max_registry_data_bytes = 16 * 1024;
    let config = parse_configure(edge.as_bytes()).expect("edges are valid");
    assert_eq!(config.max_registry_data_bytes, 16 * 1024);
    edge.max_registry_data_bytes = 64;
    let config = parse_configure(edge.as_bytes()).expect("edges are valid");
    assert_eq!(config.max_registry_data_bytes, 64);
    // 0, what the field held while it was reserved, is the default cap.
    edge.max_registry_data_bytes = 0;
    let config = parse_configure(edge.as_bytes()).expect("0 is valid");
    assert_eq!(
        config.max_registry_data_bytes,
        Config::DEFAULT.max_registry_data_bytes
    );
}

#[test]
fn output_buffers_are_checked() {
    assert_eq!(
        check_read_buffer(READ_MIN_BUFFER as usize - 1)
            .unwrap_err()
            .status(),
        status::BUFFER_TOO_SMALL
    );
    assert!(check_read_buffer(READ_MIN_BUFFER as usize).is_ok());
    assert!(check_output::<StatsResponse>(432).is_ok());
    assert!(check_output::<StatsResponse>(431).is_err());
}

#[test]
fn replay_files_round_trip_and_report_offsets() {
    let mut file = FileHeader::new(7).as_bytes().to_vec();
    for (kind, payload) in [
        (FrameKind::Batch, &b"12345"[..]),
        (FrameKind::VolumeMap, b"\\Device\\HarddiskVolume3\tC:\n"),
    ] {
        file.extend(replay::frame_header(kind, payload.len() as u32, 99));
        file.extend(payload);
        file.extend(replay::padding(payload.len()));
    }
    assert_eq!(file.len() % 8, 0);
    let (header, frames) = Frames::new(&file).unwrap();
    assert_eq!(header.created, 7);
    let frames: Vec<_> = frames.collect::<Result<_, _>>().unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(
        (frames[0].kind, frames[0].payload, frames[0].offset),
        (FrameKind::Batch, &b"12345"[..], 32)
    );
    assert_eq!(frames[1].offset, 32 + 16 + 8);

    assert_eq!(
        Frames::new(&file[..10]).unwrap_err(),
        ReplayError::ShortHeader { len: 10 }
    );
    let mut bad = file.clone();
    bad[0] = b'X';
    assert_eq!(Frames::new(&bad).unwrap_err(), ReplayError::BadMagic);
    let truncated = &file[..file.len() - 20];
    let results: Vec<_> = Frames::new(truncated).unwrap().1.collect();
    assert!(matches!(
        results.last(),
        Some(Err(ReplayError::TruncatedFrame { offset: 56, .. }))
    ));
    let mut unknown = file.clone();
    unknown[32] = 9;
    let first = Frames::new(&unknown).unwrap().1.next().unwrap();
    assert_eq!(
        first,
        Err(ReplayError::UnknownFrameKind {
            offset: 32,
            kind: 9
        })
    );
    assert_eq!(
        first.unwrap_err().to_string(),
        "byte 32: unknown frame kind 9"
    );
}
