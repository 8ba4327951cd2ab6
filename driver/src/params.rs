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

#[cfg(test)]
mod tests {
    use super::*;

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
