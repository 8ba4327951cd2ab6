//! Fuzzes the agent's decoder with arbitrary READ batches: it must return
//! records or typed errors, never panic, and never loop.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringside_wire::{Records, decode_record};

fuzz_target!(|data: &[u8]| {
    let _ = decode_record(data);
    let mut offset = 0;
    for record in Records::new(data) {
        if let Ok(record) = record {
            let size = record.header().size as usize;
            assert!(size >= 32 && size % 8 == 0);
            offset += size;
            assert!(offset <= data.len());
        }
    }
});
