use ringside_ring::Ring;
use ringside_wire::EventKind;
fn main() {
    let mut memory = vec![0u64; (1 << 20) / 8];
    let ring = Ring::new(zerocopy::IntoBytes::as_mut_bytes(memory.as_mut_slice())).unwrap();
    let mut producer = ring.claim(0).unwrap();
    let src = vec![7u8; 48];
    let mut out = vec![0u8; 65536];
    let t = std::time::Instant::now();
    let n = 200_000_000u64;
    let mut done = 0;
    while done < n {
        for _ in 0..1365 {
            let mut slot = producer.reserve(EventKind::FileWrite, src.len()).unwrap();
            slot.buffer().copy_from_slice(&src);
            slot.commit();
        }
        done += 1365;
        let got = ring.drain_into(&mut out);
        std::hint::black_box(&out[..got]);
    }
    eprintln!("{:.1} M rec/s", n as f64 / t.elapsed().as_secs_f64() / 1e6);
}
