//! Property tests: any bytes decode to records or typed errors, never a
//! panic, and whatever decodes is internally consistent.

use proptest::prelude::*;
use ringside_wire::record::*;
use ringside_wire::replay::{FileHeader, Frames};
use ringside_wire::{Field, Origin, Record, Records, decode_record, encode, encoded_len};
use zerocopy::IntoBytes;

fn blobs_in_bounds(record: &Record<'_>) -> bool {
    let size = record.header().size as usize;
    let check = |blobs: &[Blob]| {
        blobs.iter().all(|b| {
            b.len == 0
                || (b.offset as usize >= HEADER_SIZE && b.offset as usize + b.len as usize <= size)
        })
    };
    match record {
        Record::ProcessCreate(e) => check(&[
            e.body.image_name,
            e.body.command_line,
            e.body.user_sid,
            e.body.integrity_sid,
        ]),
        Record::ImageLoad(e) => check(&[e.body.image_name]),
        Record::FileCreate(e) => check(&[e.body.name]),
        Record::FileWrite(e) => check(&[e.body.name]),
        Record::FileRename(e) => check(&[e.body.old_name, e.body.new_name]),
        Record::FileDelete(e) => check(&[e.body.name]),
        Record::FileCloseModified(e) => check(&[e.body.name]),
        Record::RegistrySetValue(e) => check(&[e.body.key_name, e.body.value_name, e.body.data]),
        Record::RegistryKey(e) => check(&[e.body.key_name, e.body.value_name]),
        Record::RegistryRename(e) => check(&[e.body.key_name, e.body.new_name]),
        Record::ProcessAccess(e) => check(&[e.body.call_trace]),
        Record::NamedPipe(e) => check(&[e.body.name]),
        Record::ProcessExit(_) | Record::RemoteThread(_) | Record::Lost(_) | Record::Stats(_) => {
            true
        }
    }
}

/// Bytes that are mostly a valid record with a few bytes overwritten: random
/// bytes alone almost never get past the header checks.
fn mutated_record() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(any::<u16>(), 0..200),
        any::<u16>(),
        prop::collection::vec((0usize..400, any::<u8>()), 0..6),
    )
        .prop_map(|(name, cap, edits)| {
            let name: Vec<u8> = name.as_bytes().to_vec();
            let fields = [Field::new(&name, cap & !1), Field::new(&name, cap)];
            let len = encoded_len::<FileRename>(&fields).unwrap();
            let mut out = vec![0; len];
            encode(&mut out, Origin::default(), FileRename::default(), &fields).unwrap();
            for (at, value) in edits {
                if let Some(byte) = out.get_mut(at) {
                    *byte = value;
                }
            }
            out
        })
}

proptest! {
    // Under Miri: few cases, and no failure file (Miri isolates the file system).
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 8 } else { 256 },
        failure_persistence: if cfg!(miri) { None } else { ProptestConfig::default().failure_persistence },
        ..ProptestConfig::default()
    })]
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for record in Records::new(&bytes).flatten() {
            prop_assert!(blobs_in_bounds(&record));
        }
        let _ = Frames::new(&bytes).map(|(_, frames)| frames.count());
    }

    #[test]
    fn mutated_records_decode_consistently(bytes in mutated_record()) {
        match decode_record(&bytes) {
            Ok(record) => {
                prop_assert!(blobs_in_bounds(&record));
                prop_assert!(record.header().size as usize <= bytes.len());
            }
            Err(error) => prop_assert_eq!(error.offset(), 0),
        }
    }

    #[test]
    fn names_round_trip_with_truncation(name in ".{0,300}", cap in (0u16..2048).prop_map(|c| c & !1)) {
        let utf16: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let fields = [Field::new(&utf16, cap)];
        let mut out = vec![0; encoded_len::<FileCloseModified>(&fields).unwrap()];
        encode(&mut out, Origin { pid: 1, tid: 2, timestamp: 3 }, FileCloseModified::default(), &fields).unwrap();
        let Ok(Record::FileCloseModified(event)) = decode_record(&out) else { panic!("must decode") };
        let stored = event.name();
        let expected_len = utf16.len().min(cap as usize);
        prop_assert_eq!(stored.bytes, &utf16[..expected_len]);
        prop_assert_eq!(stored.truncated, utf16.len() > cap as usize);
        prop_assert_eq!(event.header.flags & HEADER_FLAG_TRUNCATED != 0, stored.truncated);
    }

    #[test]
    fn replay_files_with_random_tails_never_panic(tail in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut file = FileHeader::new(0).as_bytes().to_vec();
        file.extend(tail);
        let (_, frames) = Frames::new(&file).unwrap();
        for frame in frames.flatten() {
            prop_assert!(frame.offset + 16 + frame.payload.len() <= file.len());
        }
    }
}
