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
