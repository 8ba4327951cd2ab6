//! The driver's only configuration input besides CONFIGURE: DWORD values
//! under `HKLM\SYSTEM\CurrentControlSet\Services\ringside\Parameters`,
//! clamped to documented bounds before use.

/// Smallest ring: 64 KiB (holds a maximal record).
pub const RING_SIZE_MIN: u32 = 64 * 1024;
/// Largest ring: 64 MiB of non-paged pool.
pub const RING_SIZE_MAX: u32 = 64 * 1024 * 1024;
/// Ring size when `RingSizeBytes` is absent or not a DWORD: 4 MiB.
pub const RING_SIZE_DEFAULT: u32 = 4 * 1024 * 1024;

/// The ring size to allocate for a `RingSizeBytes` value: clamped to
/// [`RING_SIZE_MIN`]..=[`RING_SIZE_MAX`], then rounded *down* to a power of
/// two (so the result never exceeds what the administrator allowed, except
/// when it was below the minimum).
pub fn ring_size(value: Option<u32>) -> u32 {
    let clamped = value
        .unwrap_or(RING_SIZE_DEFAULT)
        .clamp(RING_SIZE_MIN, RING_SIZE_MAX);
    // `clamped >= 1`, so `ilog2` is defined and the shift stays below 32.
    1u32 << clamped.ilog2()
}

/// Smallest lane the driver splits the ring into: holds a maximal record.
pub const LANE_SIZE_MIN: u32 = RING_SIZE_MIN;

/// How a ring of `size` bytes (a power of two, from [`ring_size`]) is split
/// for a machine of `cpus` processors: `(lanes, exclusive)`.
///
/// One lane per CPU when lanes of at least [`LANE_SIZE_MIN`] bytes fit (and
/// `MAX_LANES` allows): `exclusive`, each CPU alone reserves its own lane
/// at DISPATCH_LEVEL, with no lock. Otherwise as many lanes as fit, shared
/// under their locks by CPU number modulo the lane count.
pub fn ring_lanes(size: u32, cpus: u32) -> (usize, bool) {
    let wanted = cpus.max(1).next_power_of_two();
    let fit = (size / LANE_SIZE_MIN).max(1);
    let limit = u32::try_from(crate::ring::MAX_LANES).unwrap_or(u32::MAX);
    let lanes = wanted.min(fit).min(limit);
    (lanes as usize, lanes >= cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_exclusive_lane_per_cpu_when_lanes_fit() {
        assert_eq!(ring_lanes(RING_SIZE_DEFAULT, 1), (1, true));
        assert_eq!(ring_lanes(RING_SIZE_DEFAULT, 6), (8, true));
        assert_eq!(ring_lanes(RING_SIZE_DEFAULT, 64), (64, true));
    }

    #[test]
    fn lanes_are_shared_when_the_ring_or_the_lane_limit_is_too_small() {
        // 128 KiB holds two 64 KiB lanes: four CPUs share them.
        assert_eq!(ring_lanes(128 * 1024, 4), (2, false));
        assert_eq!(ring_lanes(RING_SIZE_MIN, 2), (1, false));
        assert_eq!(ring_lanes(RING_SIZE_MAX, 640), (64, false));
        for (size, cpus) in [(RING_SIZE_MIN, 1), (RING_SIZE_MAX, 3), (1 << 20, 300)] {
            let (lanes, _) = ring_lanes(size, cpus);
            assert!(lanes.is_power_of_two());
            assert!(size as usize / lanes >= LANE_SIZE_MIN as usize);
            let mut memory = std::vec![0u64; size as usize / 8];
            let bytes = zerocopy::IntoBytes::as_mut_bytes(memory.as_mut_slice());
            let ring = crate::ring::Ring::with_lanes(bytes, lanes);
            assert!(ring.is_ok(), "{size} bytes, {lanes} lanes");
        }
    }

    #[test]
    fn absent_value_gives_the_default() {
        assert_eq!(ring_size(None), RING_SIZE_DEFAULT);
    }

    #[test]
    fn values_are_clamped_and_rounded_down() {
        assert_eq!(ring_size(Some(0)), RING_SIZE_MIN);
        assert_eq!(ring_size(Some(1)), RING_SIZE_MIN);
        assert_eq!(ring_size(Some(u32::MAX)), RING_SIZE_MAX);
        assert_eq!(ring_size(Some(3 * 1024 * 1024)), 2 * 1024 * 1024);
        assert_eq!(ring_size(Some(1 << 20)), 1 << 20);
        for value in [0, 4095, 65537, 1 << 22, 99_999_999, u32::MAX] {
            let size = ring_size(Some(value));
            assert!(size.is_power_of_two());
            assert!((RING_SIZE_MIN..=RING_SIZE_MAX).contains(&size));
        }
    }
}

/// `REG_DWORD`.
const REG_DWORD: u32 = 4;

/// The DWORD in a `KEY_VALUE_PARTIAL_INFORMATION` buffer (`TitleIndex`,
/// `Type`, `DataLength`, then the data), or `None` if the value is not a
/// 4-byte `REG_DWORD` or the buffer is short.
pub fn dword_from_partial_information(buffer: &[u8]) -> Option<u32> {
    let word = |at: usize| {
        buffer
            .get(at..at.checked_add(4)?)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    (word(4)? == REG_DWORD && word(8)? == 4).then_some(())?;
    word(12)
}

#[cfg(test)]
mod registry_tests {
    use super::*;

    fn partial(kind: u32, len: u32, data: &[u8]) -> std::vec::Vec<u8> {
        let mut v = std::vec::Vec::new();
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn only_a_four_byte_dword_is_accepted() {
        assert_eq!(
            dword_from_partial_information(&partial(4, 4, &0x0010_0000u32.to_le_bytes())),
            Some(0x0010_0000)
        );
        // REG_SZ, REG_QWORD-sized data, truncated buffer.
        assert_eq!(
            dword_from_partial_information(&partial(1, 4, &[1, 0, 0, 0])),
            None
        );
        assert_eq!(
            dword_from_partial_information(&partial(4, 8, &[0; 8])),
            None
        );
        assert_eq!(
            dword_from_partial_information(&partial(4, 4, &[1, 0])),
            None
        );
        assert_eq!(dword_from_partial_information(&[]), None);
    }
}

/// The latency timer's settings for a bound of `latency_ms` on a machine
/// whose clock tick is `tick` (100 ns units, `KeQueryTimeIncrement`):
/// (relative due time for KeSetTimerEx, negative; period in ms).
///
/// A kernel timer expires only on a clock tick (15.625 ms by default), up
/// to one tick after its due time, so the timer is set one tick early:
/// due at `latency - tick` (at least 100 ns) and every `latency - tick`
/// (at least 1 ms). The first expiry then comes within `max(latency, tick)`
/// of arming, and two expiries are at most `max(latency, tick)` apart,
/// which is the bound a pending READ completes within.
pub fn latency_timer(latency_ms: u32, tick: u32) -> (i64, i32) {
    const UNITS_PER_MS: i64 = 10_000;
    let early = i64::from(latency_ms)
        .saturating_mul(UNITS_PER_MS)
        .saturating_sub(i64::from(tick));
    let due = early.max(1);
    let period_ms = (early / UNITS_PER_MS).clamp(1, i64::from(i32::MAX));
    (due.saturating_neg(), i32::try_from(period_ms).unwrap_or(1))
}

#[cfg(test)]
mod latency_tests {
    use super::latency_timer;

    /// The default clock tick: 15.625 ms.
    const TICK: u32 = 156_250;

    #[test]
    fn the_timer_is_set_a_tick_early_and_never_below_its_minimums() {
        // 50 ms: due at 34.375 ms, every 34 ms (34 + 15.625 <= 50).
        assert_eq!(latency_timer(50, TICK), (-343_750, 34));
        // Below one tick: due at once, every ms (it fires on every tick).
        assert_eq!(latency_timer(1, TICK), (-1, 1));
        assert_eq!(latency_timer(7, TICK), (-1, 1));
        // A 1 ms clock (timeBeginPeriod): nearly the plain bound.
        assert_eq!(latency_timer(20, 10_000), (-190_000, 19));
    }
}
