//! Encoder/decoder round trips for every record kind, and a decode error for
//! every kind of malformed record.

use ringside_wire::record::*;
use ringside_wire::{
    DecodeError, EncodeError, EventKind, Field, Origin, Record, RecordKind, Records, decode_record,
    encode, encode_exact, encoded_len,
};
use zerocopy::IntoBytes;

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn text(field: ringside_wire::RawField<'_>) -> String {
    field.chars().collect()
}

const ORIGIN: Origin = Origin {
    pid: 4242,
    tid: 77,
    timestamp: 133_500_000_000_000_000,
};

fn encode_vec<B: Body>(body: B, fields: &[Field<'_>]) -> Vec<u8> {
    let len = encoded_len::<B>(fields).expect("fits");
    let mut out = vec![0xAA; len + 16];
    let written = encode(&mut out, ORIGIN, body, fields).expect("encodes");
    assert_eq!(written, len, "encode writes exactly encoded_len bytes");
    out.truncate(written);
    out
}

#[test]
fn process_create_round_trips_every_field() {
    let image = utf16(r"\Device\HarddiskVolume3\Windows\System32\cmd.exe");
    let command_line = utf16(r#"cmd.exe /c "whoami /all""#);
    let user_sid = [1u8, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 2, 3, 4];
    let integrity_sid = [1u8, 1, 0, 0, 0, 0, 0, 16, 0, 0x30, 0, 0];
    let body = ProcessCreate {
        parent_pid: 1000,
        creating_pid: 1001,
        creating_tid: 1002,
        flags: PROCESS_FLAG_FILE_OPEN_NAME_AVAILABLE | PROCESS_FLAG_LOGON_ID,
        // LUID { LowPart: 0x0052_9ae3, HighPart: 0x11 }.
        logon_id: 0x0000_0011_0052_9ae3,
        ..Default::default()
    };
    let fields = [
        Field::new(&image, 1024),
        Field::new(&command_line, 1024),
        Field::new(&user_sid, 68),
        Field::new(&integrity_sid, 68),
    ];
    let bytes = encode_vec(body, &fields);
    assert_eq!(bytes.len() % RECORD_ALIGN, 0);

    let Record::ProcessCreate(event) = decode_record(&bytes).expect("decodes") else {
        panic!("wrong kind")
    };
    assert_eq!(event.header.size as usize, bytes.len());
    assert_eq!(event.header.kind, EventKind::ProcessCreate as u16);
    assert_eq!(
        (event.header.pid, event.header.tid, event.header.timestamp),
        (4242, 77, ORIGIN.timestamp)
    );
    assert_eq!(event.header.flags & HEADER_FLAG_TRUNCATED, 0);
    assert_eq!(
        (
            event.body.parent_pid,
            event.body.creating_pid,
            event.body.creating_tid
        ),
        (1000, 1001, 1002)
    );
    assert_eq!(
        event.body.flags,
        PROCESS_FLAG_FILE_OPEN_NAME_AVAILABLE | PROCESS_FLAG_LOGON_ID
    );
    assert_eq!(event.logon_id(), Some(0x0000_0011_0052_9ae3));
    // The LUID's bytes as the kernel lays them out: LowPart, then HighPart.
    assert_eq!(
        &bytes[HEADER_SIZE + 48..HEADER_SIZE + 56],
        &[0xe3, 0x9a, 0x52, 0, 0x11, 0, 0, 0]
    );
    assert_eq!(
        text(event.image_name()),
        r"\Device\HarddiskVolume3\Windows\System32\cmd.exe"
    );
    assert_eq!(text(event.command_line()), r#"cmd.exe /c "whoami /all""#);
    assert_eq!(event.user_sid().bytes, user_sid);
    assert_eq!(event.integrity_sid().bytes, integrity_sid);
    assert!(!event.image_name().truncated);
}

#[test]
fn strings_are_truncated_at_their_cap_and_flagged() {
    let long = utf16(&"A".repeat(500));
    let bytes = encode_vec(FileWrite::default(), &[Field::new(&long, 64)]);
    let Record::FileWrite(event) = decode_record(&bytes).unwrap() else {
        panic!("wrong kind")
    };
    assert_eq!(event.name().bytes.len(), 64);
    assert!(event.name().truncated);
    assert_eq!(event.body.name.full_len, 1000);
    assert_eq!(
        event.header.flags & HEADER_FLAG_TRUNCATED,
        HEADER_FLAG_TRUNCATED
    );
    assert_eq!(text(event.name()), "A".repeat(32));
}

#[test]
fn absent_fields_decode_as_empty() {
    let bytes = encode_vec(ProcessCreate::default(), &[Field::EMPTY; 4]);
    let Record::ProcessCreate(event) = decode_record(&bytes).unwrap() else {
        panic!("wrong kind")
    };
    assert!(
        event.image_name().is_empty()
            && event.command_line().is_empty()
            && event.user_sid().is_empty()
    );
    assert_eq!(event.body.image_name, Blob::default());
    // Without PROCESS_FLAG_LOGON_ID the logon session is unknown, whatever
    // `logon_id` holds.
    assert_eq!(event.logon_id(), None);
    let body = ProcessCreate {
        logon_id: 0x3e7,
        ..Default::default()
    };
    let bytes = encode_vec(body, &[Field::EMPTY; 4]);
    let Record::ProcessCreate(event) = decode_record(&bytes).unwrap() else {
        panic!("wrong kind")
    };
    assert_eq!(event.logon_id(), None);
}

#[test]
fn every_kind_round_trips_through_a_batch() {
    let a = utf16(r"\Device\HarddiskVolume3\Users\bob\report.docx");
    let b = utf16(r"\Device\HarddiskVolume3\Users\bob\report.docx.locked");
    let registry_key = utf16(r"\REGISTRY\MACHINE\SOFTWARE\Ringside");
    let registry_value = utf16("Start");
    let mut batch = Vec::new();
    batch.extend(encode_vec(
        ProcessExit {
            exit_status: 0xC000_0005,
            _pad: 0,
        },
        &[],
    ));
    batch.extend(encode_vec(
        ImageLoad {
            image_base: 0x7ff8_0000_0000,
            image_size: 0x1000,
            properties: IMAGE_PROPERTY_SYSTEM_MODE,
            signature_level: 12,
            signature_type: 1,
            _pad: 0,
            ..Default::default()
        },
        &[Field::new(&a, 1024)],
    ));
    batch.extend(encode_vec(
        FileCreate {
            desired_access: 0x40000000,
            create_options: 2 << 24,
            information: 2,
            status: 0,
            ..Default::default()
        },
        &[Field::new(&a, 1024)],
    ));
    batch.extend(encode_vec(FileWrite::default(), &[Field::new(&a, 1024)]));
    batch.extend(encode_vec(
        FileRename {
            flags: 1,
            information_class: 10,
            ..Default::default()
        },
        &[Field::new(&a, 1024), Field::new(&b, 1024)],
    ));
    batch.extend(encode_vec(
        FileDelete {
            flags: DELETE_FLAG_DISPOSITION,
            information_class: 13,
            ..Default::default()
        },
        &[Field::new(&a, 1024)],
    ));
    batch.extend(encode_vec(
        FileCloseModified::default(),
        &[Field::new(&a, 1024)],
    ));
    batch.extend(encode_vec(
        RegistrySetValue {
            value_type: 4,
            data_size: 4,
            ..Default::default()
        },
        &[
            Field::new(&registry_key, 1024),
            Field::new(&registry_value, 1024),
            Field::new(&[1, 0, 0, 0], 1024),
        ],
    ));
    batch.extend(encode_vec(
        RegistryKey {
            operation: REGISTRY_OP_DELETE_VALUE,
            ..Default::default()
        },
        &[
            Field::new(&registry_key, 1024),
            Field::new(&registry_value, 1024),
        ],
    ));
    batch.extend(encode_vec(
        RegistryRename::default(),
        &[
            Field::new(&registry_key, 1024),
            Field::new(&utf16("Ringside2"), 1024),
        ],
    ));
    let frames: Vec<u8> = [0x7ffa_1234_5678u64, 0x7ff6_0000_1a0b]
        .iter()
        .flat_map(|a| a.to_le_bytes())
        .collect();
    batch.extend(encode_vec(
        ProcessAccess {
            target_pid: 860,
            target_tid: 0,
            granted_access: 0x1fffff,
            desired_access: 0x1410,
            flags: ACCESS_FLAG_DUPLICATE | ACCESS_FLAG_DESIRED_KNOWN,
            ..Default::default()
        },
        &[Field::new(&frames, 256)],
    ));
    batch.extend(encode_vec(
        RemoteThread {
            target_pid: 636,
            new_thread_id: 7208,
            start_address: 0x7ffb_9e0b_2d50,
            flags: REMOTE_THREAD_FLAG_START_ADDRESS,
            _pad: 0,
        },
        &[],
    ));
    let pipe = utf16(r"\Device\NamedPipe\MSSE-1234-server");
    batch.extend(encode_vec(
        NamedPipe {
            operation: PIPE_OP_CREATED,
            ..Default::default()
        },
        &[Field::new(&pipe, 1024)],
    ));
    batch.extend(encode_vec(
        Lost {
            dropped: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
        },
        &[],
    ));
    batch.extend(encode_vec(
        DriverStats {
            ring_capacity: 1 << 20,
            ..Default::default()
        },
        &[],
    ));

    let records: Vec<Record<'_>> = Records::new(&batch)
        .collect::<Result<_, _>>()
        .expect("all decode");
    let kinds: Vec<RecordKind> = records.iter().map(Record::kind).collect();
    let mut expected: Vec<RecordKind> = EventKind::ALL[1..]
        .iter()
        .copied()
        .map(RecordKind::Event)
        .collect();
    expected.extend([RecordKind::Lost, RecordKind::Stats]);
    assert_eq!(kinds, expected);

    match records[0] {
        Record::ProcessExit(e) => assert_eq!(e.body.exit_status, 0xC000_0005),
        _ => unreachable!(),
    }
    match records[1] {
        Record::ImageLoad(e) => {
            assert_eq!(
                (e.body.image_base, e.body.image_size, e.body.signature_level),
                (0x7ff8_0000_0000, 0x1000, 12)
            );
            assert_eq!(
                text(e.image_name()),
                r"\Device\HarddiskVolume3\Users\bob\report.docx"
            );
        }
        _ => unreachable!(),
    }
    match records[4] {
        Record::FileRename(e) => {
            assert_eq!(
                text(e.old_name()),
                r"\Device\HarddiskVolume3\Users\bob\report.docx"
            );
            assert_eq!(
                text(e.new_name()),
                r"\Device\HarddiskVolume3\Users\bob\report.docx.locked"
            );
        }
        _ => unreachable!(),
    }
    match records[7] {
        Record::RegistrySetValue(e) => {
            assert_eq!((e.body.value_type, e.body.data_size), (4, 4));
            assert_eq!(text(e.key_name()), r"\REGISTRY\MACHINE\SOFTWARE\Ringside");
            assert_eq!(text(e.value_name()), "Start");
            assert_eq!(e.data().bytes, &[1, 0, 0, 0]);
        }
        _ => unreachable!(),
    }
    match records[8] {
        Record::RegistryKey(e) => {
            assert_eq!(e.body.operation, REGISTRY_OP_DELETE_VALUE);
            assert_eq!(text(e.key_name()), r"\REGISTRY\MACHINE\SOFTWARE\Ringside");
            assert_eq!(text(e.value_name()), "Start");
        }
        _ => unreachable!(),
    }
    match records[9] {
        Record::RegistryRename(e) => {
            assert_eq!(text(e.key_name()), r"\REGISTRY\MACHINE\SOFTWARE\Ringside");
            assert_eq!(text(e.new_name()), "Ringside2");
        }
        _ => unreachable!(),
    }
    match records[10] {
        Record::ProcessAccess(e) => {
            assert_eq!(
                (
                    e.body.target_pid,
                    e.body.granted_access,
                    e.body.desired_access
                ),
                (860, 0x1fffff, 0x1410)
            );
            assert_eq!(
                e.body.flags,
                ACCESS_FLAG_DUPLICATE | ACCESS_FLAG_DESIRED_KNOWN
            );
            assert_eq!(
                e.call_trace().collect::<Vec<_>>(),
                [0x7ffa_1234_5678, 0x7ff6_0000_1a0b]
            );
        }
        _ => unreachable!(),
    }
    match records[11] {
        Record::RemoteThread(e) => {
            assert_eq!(e.header.kind, 13);
            assert_eq!((e.body.target_pid, e.body.new_thread_id), (636, 7208));
            assert_eq!(e.body.start_address, 0x7ffb_9e0b_2d50);
            assert_eq!(e.body.flags, REMOTE_THREAD_FLAG_START_ADDRESS);
        }
        _ => unreachable!(),
    }
    match records[12] {
        Record::NamedPipe(e) => {
            assert_eq!(e.header.kind, 14);
            assert_eq!(e.body.operation, PIPE_OP_CREATED);
            assert_eq!(text(e.name()), r"\Device\NamedPipe\MSSE-1234-server");
        }
        _ => unreachable!(),
    }
    match records[13] {
        Record::Lost(e) => assert_eq!(
            e.body.dropped,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
        ),
        _ => unreachable!(),
    }
}

#[test]
fn encoder_refuses_what_does_not_fit() {
    let name = utf16("x");
    assert_eq!(encoded_len::<FileWrite>(&[]), None, "wrong field count");
    let mut small = [0u8; 16];
    assert!(matches!(
        encode(
            &mut small,
            ORIGIN,
            FileWrite::default(),
            &[Field::new(&name, 64)]
        ),
        Err(ringside_wire::EncodeError::BufferTooSmall { .. })
    ));
    let huge = vec![0u8; 40_000];
    let fields = [Field::new(&huge, 40_000), Field::new(&huge, 40_000)];
    assert_eq!(
        encoded_len::<FileRename>(&fields),
        None,
        "two 40 KB names exceed MAX_RECORD_SIZE"
    );
    let mut out = vec![0u8; 100_000];
    assert_eq!(
        encode(&mut out, ORIGIN, FileRename::default(), &fields),
        Err(ringside_wire::EncodeError::TooLarge)
    );
}

#[test]
fn encode_exact_fills_a_reservation_of_encoded_len_bytes() {
    // Every padding length (0..8) and truncation, over stale bytes.
    for units in 0..24 {
        let old = utf16(&"o".repeat(units));
        let new = utf16(&"n".repeat(units / 2));
        let fields = [Field::new(&old, 30), Field::new(&new, 64)];
        let body = FileRename {
            flags: 1,
            information_class: 10,
            ..FileRename::default()
        };
        let expected = encode_vec(body, &fields);
        let mut record = vec![0xAA; expected.len()];
        encode_exact(&mut record, ORIGIN, body, &fields).expect("encodes");
        assert_eq!(record, expected, "{units} units");
        let Ok(Record::FileRename(event)) = decode_record(&record) else {
            panic!("not a rename: {units} units");
        };
        assert_eq!(event.old_name().bytes.len(), old.len().min(30));
        for wrong in [expected.len() - 8, expected.len() + 8, expected.len() + 1] {
            let mut record = vec![0xAA; wrong];
            assert!(
                matches!(
                    encode_exact(&mut record, ORIGIN, body, &fields),
                    Err(EncodeError::WrongSize { .. })
                ),
                "{units} units into {wrong} bytes"
            );
        }
    }
    let mut record = [0u8; 40];
    assert!(matches!(
        encode_exact(&mut record, ORIGIN, FileWrite::default(), &[]),
        Err(EncodeError::FieldCount { .. })
    ));
}

fn valid_file_write() -> Vec<u8> {
    encode_vec(FileWrite::default(), &[Field::new(&utf16("C:\\x"), 64)])
}

fn set_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn each_malformation_has_its_own_error() {
    let good = valid_file_write();
    assert!(decode_record(&good).is_ok());

    assert!(matches!(
        decode_record(&good[..31]),
        Err(DecodeError::Short {
            needed: 32,
            available: 31,
            ..
        })
    ));

    for bad_size in [
        0u32,
        24,
        41,
        good.len() as u32 + 8,
        MAX_RECORD_SIZE as u32 + 8,
    ] {
        let mut bytes = good.clone();
        set_u32(&mut bytes, 0, bad_size);
        assert!(
            matches!(decode_record(&bytes), Err(DecodeError::BadLength { size, .. }) if size == bad_size),
            "size {bad_size}"
        );
    }

    let mut bytes = good.clone();
    bytes[6] = 9;
    assert_eq!(
        decode_record(&bytes),
        Err(DecodeError::VersionMismatch {
            offset: 0,
            found: 9
        })
    );

    let mut bytes = good.clone();
    bytes[4..6].copy_from_slice(&0x1234u16.to_le_bytes());
    assert_eq!(
        decode_record(&bytes),
        Err(DecodeError::UnknownKind {
            offset: 0,
            kind: 0x1234
        })
    );

    // A ProcessCreate header on a record too small for its 56-byte body.
    let mut bytes = good.clone();
    bytes[4..6].copy_from_slice(&(EventKind::ProcessCreate as u16).to_le_bytes());
    assert!(matches!(
        decode_record(&bytes),
        Err(DecodeError::BodyTooShort { needed: 88, .. })
    ));

    // Blob pointing into the header, and blob running past the end.
    let blob_at = HEADER_SIZE;
    for (offset, len) in [(8u16, 4u16), (40, 64)] {
        let mut bytes = good.clone();
        let blob = Blob {
            offset,
            len,
            full_len: len,
            _pad: 0,
        };
        bytes[blob_at..blob_at + 8].copy_from_slice(blob.as_bytes());
        assert!(
            matches!(
                decode_record(&bytes),
                Err(DecodeError::BlobOutOfBounds { blob: 0, .. })
            ),
            "{offset}/{len}"
        );
    }

    let mut bytes = good.clone();
    bytes[blob_at + 2..blob_at + 4].copy_from_slice(&3u16.to_le_bytes());
    assert!(matches!(
        decode_record(&bytes),
        Err(DecodeError::OddUtf16Length { len: 3, .. })
    ));

    // A call trace that ends in part of an address.
    let access = encode_vec(ProcessAccess::default(), &[Field::new(&[0u8; 16], 256)]);
    assert!(decode_record(&access).is_ok());
    let trace_at = HEADER_SIZE + 24;
    for len in [4u16, 9, 15] {
        let mut bytes = access.clone();
        bytes[trace_at + 2..trace_at + 4].copy_from_slice(&len.to_le_bytes());
        assert_eq!(
            decode_record(&bytes).map(|r| r.kind()),
            Err(DecodeError::PartialAddress {
                offset: 0,
                kind: RecordKind::Event(EventKind::ProcessAccess),
                blob: 0,
                len,
            }),
            "{len}"
        );
    }

    let mut bytes = good.clone();
    bytes[blob_at + 4..blob_at + 6].copy_from_slice(&2u16.to_le_bytes());
    assert!(matches!(
        decode_record(&bytes),
        Err(DecodeError::BlobLongerThanSource {
            len: 8,
            full_len: 2,
            ..
        })
    ));
}

#[test]
fn batch_iteration_skips_bad_content_but_stops_at_bad_lengths() {
    let good = valid_file_write();
    let mut unknown = good.clone();
    unknown[4..6].copy_from_slice(&0x7777u16.to_le_bytes());
    let batch = [good.clone(), unknown, good.clone()].concat();
    let results: Vec<_> = Records::new(&batch).collect();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[2].is_ok());
    assert_eq!(
        results[1],
        Err(DecodeError::UnknownKind {
            offset: good.len(),
            kind: 0x7777
        })
    );

    let mut broken = good.clone();
    set_u32(&mut broken, 0, 12);
    let batch = [good.clone(), broken, good.clone()].concat();
    let results: Vec<_> = Records::new(&batch).collect();
    assert_eq!(
        results.len(),
        2,
        "nothing after an untrustworthy size can be located"
    );
    assert_eq!(results[1].unwrap_err().offset(), good.len());

    // Trailing garbage shorter than a header is reported, not ignored.
    let batch = [good.clone(), vec![1, 2, 3]].concat();
    let results: Vec<_> = Records::new(&batch).collect();
    assert!(matches!(
        results[1],
        Err(DecodeError::Short { available: 3, .. })
    ));
}

#[test]
fn errors_display_what_and_where() {
    let mut bytes = valid_file_write();
    bytes[4..6].copy_from_slice(&0x7777u16.to_le_bytes());
    let batch = [valid_file_write(), bytes].concat();
    let error = Records::new(&batch).nth(1).unwrap().unwrap_err();
    assert_eq!(error.to_string(), "record at byte 48: unknown kind 0x7777");
    assert_eq!(error.class(), "unknown_kind");
}

#[test]
fn a_registry_key_record_with_an_unknown_operation_is_a_typed_error() {
    let key = utf16(r"\REGISTRY\MACHINE\SOFTWARE\Ringside");
    for (operation, known) in [
        (REGISTRY_OP_CREATE_KEY, true),
        (REGISTRY_OP_DELETE_VALUE, true),
        (0, false),
        (4, false),
    ] {
        let bytes = encode_vec(
            RegistryKey {
                operation,
                ..Default::default()
            },
            &[Field::new(&key, 1024), Field::new(&[], 1024)],
        );
        let decoded = Records::new(&bytes).next().expect("one record");
        match decoded {
            Ok(Record::RegistryKey(e)) if known => assert_eq!(e.body.operation, operation),
            Err(error) if !known => {
                assert_eq!(error.class(), "unknown_registry_operation");
                assert!(
                    error
                        .to_string()
                        .contains(&format!("operation {operation}"))
                );
            }
            other => panic!("operation {operation}: {other:?}"),
        }
    }
}

#[test]
fn a_named_pipe_record_with_an_unknown_operation_is_a_typed_error() {
    let name = utf16(r"\Device\NamedPipe\msagent_81");
    for (operation, known) in [
        (PIPE_OP_CREATED, true),
        (PIPE_OP_CONNECTED, true),
        (0, false),
        (3, false),
    ] {
        let bytes = encode_vec(
            NamedPipe {
                operation,
                ..Default::default()
            },
            &[Field::new(&name, 1024)],
        );
        match Records::new(&bytes).next().expect("one record") {
            Ok(Record::NamedPipe(e)) if known => {
                assert_eq!(e.body.operation, operation);
                assert_eq!(text(e.name()), r"\Device\NamedPipe\msagent_81");
            }
            Err(error) if !known => {
                assert_eq!(error.class(), "unknown_pipe_operation");
                assert!(
                    error
                        .to_string()
                        .contains(&format!("operation {operation}"))
                );
            }
            other => panic!("operation {operation}: {other:?}"),
        }
    }
}
