//! FILETIME (100 ns units since 1601-01-01 UTC) to Sysmon's `UtcTime` text.

use std::fmt::Write;

/// 100 ns intervals between 1601-01-01 and 1970-01-01.
pub const UNIX_EPOCH_FILETIME: u64 = 116_444_736_000_000_000;
/// 100 ns intervals per second.
pub const TICKS_PER_SECOND: u64 = 10_000_000;

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, exact for every `i64` day
/// count a FILETIME can produce).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends `filetime` as `YYYY-MM-DD hh:mm:ss.fff` (UTC, milliseconds
/// truncated as Sysmon does).
pub fn write_utc_time(out: &mut String, filetime: u64) {
    let seconds =
        (filetime / TICKS_PER_SECOND) as i64 - (UNIX_EPOCH_FILETIME / TICKS_PER_SECOND) as i64;
    let millis = (filetime % TICKS_PER_SECOND) / 10_000;
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // Hand-formatted: this runs for every event and `write!` costs several
    // times more (measured with `cargo xtask bench agent`).
    if (0..=9999).contains(&year) {
        push_digits(out, year as u64, 4);
    } else {
        let _ = write!(out, "{year:04}");
    }
    out.push('-');
    push_digits(out, u64::from(month), 2);
    out.push('-');
    push_digits(out, u64::from(day), 2);
    out.push(' ');
    push_digits(out, (of_day / 3600) as u64, 2);
    out.push(':');
    push_digits(out, ((of_day / 60) % 60) as u64, 2);
    out.push(':');
    push_digits(out, (of_day % 60) as u64, 2);
    out.push('.');
    push_digits(out, millis, 3);
}

/// Appends the last `width` decimal digits of `value`, zero padded.
fn push_digits(out: &mut String, value: u64, width: u32) {
    let mut divisor = 10u64.pow(width.saturating_sub(1));
    while divisor > 0 {
        out.push(char::from(b'0' + ((value / divisor) % 10) as u8));
        divisor /= 10;
    }
}

/// Appends `value` in decimal.
pub fn push_decimal(out: &mut String, value: u64) {
    let mut digits = [0u8; 20];
    let mut n = value;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// `filetime` as Sysmon's `UtcTime` text.
pub fn utc_time(filetime: u64) -> String {
    let mut out = String::with_capacity(23);
    write_utc_time(&mut out, filetime);
    out
}

/// The FILETIME of a Unix time in seconds (for tests and generated replays).
pub const fn filetime_from_unix(seconds: u64) -> u64 {
    UNIX_EPOCH_FILETIME + seconds * TICKS_PER_SECOND
}

/// Now, as a FILETIME.
pub fn now_filetime() -> u64 {
    filetime_of(std::time::SystemTime::now())
}

/// A system time as a FILETIME (times before 1970 as 1970).
pub fn filetime_of(time: std::time::SystemTime) -> u64 {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    UNIX_EPOCH_FILETIME
        .saturating_add(since.as_secs().saturating_mul(TICKS_PER_SECOND))
        .saturating_add(u64::from(since.subsec_nanos() / 100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_sysmon() {
        // 2026-11-21 10:15:30.123 UTC = Unix 1795256130.
        let ft = filetime_from_unix(1_795_256_130) + 1_234_567;
        assert_eq!(utc_time(ft), "2026-11-21 10:15:30.123");
        assert_eq!(utc_time(0), "1601-01-01 00:00:00.000");
        assert_eq!(utc_time(UNIX_EPOCH_FILETIME), "1970-01-01 00:00:00.000");
        // Leap day.
        assert_eq!(
            utc_time(filetime_from_unix(951_782_400)),
            "2000-02-29 00:00:00.000"
        );
        // The largest FILETIME does not panic.
        assert!(utc_time(u64::MAX).starts_with("60056-"));
        let mut n = String::new();
        for v in [0, 7, 10, 4_294_967_295, u64::MAX] {
            n.clear();
            push_decimal(&mut n, v);
            assert_eq!(n, v.to_string());
        }
    }
}
