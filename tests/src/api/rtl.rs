//! Run-time library exports of ntoskrnl.exe the driver links against
//! (`memcpy`, `memmove`, `memset`, `memcmp`, `__chkstk`, `RtlInitUnicodeString`)
//! and helpers to build counted strings in guest memory.

use unicorn_engine::RegisterX86;

use crate::machine::{arg, model_alloc};
use crate::memory::*;

pub fn memcpy(uc: &mut Uc) -> u64 {
    let (dest, src, n) = (arg(uc, 0), arg(uc, 1), arg(uc, 2));
    if n > 0 {
        let bytes = uc.read_bytes(src, n as usize);
        uc.write_bytes(dest, &bytes);
    }
    dest
}

pub fn memset(uc: &mut Uc) -> u64 {
    let (dest, value, n) = (arg(uc, 0), arg(uc, 1) as u8, arg(uc, 2));
    if n > 0 {
        uc.write_bytes(dest, &vec![value; n as usize]);
    }
    dest
}

pub fn memcmp(uc: &mut Uc) -> u64 {
    let (a, b, n) = (arg(uc, 0), arg(uc, 1), arg(uc, 2) as usize);
    let (x, y) = (uc.read_bytes(a, n), uc.read_bytes(b, n));
    for (p, q) in x.iter().zip(&y) {
        if p != q {
            return (i32::from(*p) - i32::from(*q)) as i64 as u64;
        }
    }
    0
}

/// `__chkstk`: probes the pages of a large frame; RAX (the size) is preserved.
pub fn chkstk(uc: &mut Uc) -> u64 {
    uc.reg_read(RegisterX86::RAX).unwrap_or(0)
}

/// `RtlInitUnicodeString(PUNICODE_STRING, PCWSTR)`.
pub fn rtl_init_unicode_string(uc: &mut Uc) -> u64 {
    let (dest, source) = (arg(uc, 0), arg(uc, 1));
    let mut len = 0u64;
    if source != 0 {
        while uc.read_u16(source + len) != 0 && len < 0xFFFC {
            len += 2;
        }
    }
    uc.write_u16(dest, len as u16);
    uc.write_u16(dest + 2, if source == 0 { 0 } else { len as u16 + 2 });
    uc.write_u64(dest + 8, source);
    0
}

/// A `UNICODE_STRING` and its buffer in model memory; returns the struct address.
pub fn alloc_unicode_string(uc: &mut Uc, s: &str) -> u64 {
    alloc_unicode_units(uc, &utf16(s))
}

pub fn alloc_unicode_units(uc: &mut Uc, units: &[u16]) -> u64 {
    let bytes = utf16_bytes(units);
    let address = model_alloc(uc, 16 + bytes.len() as u64 + 2);
    write_unicode_at(uc, address, address + 16, units);
    address
}

/// Writes a UNICODE_STRING at `at` whose buffer (written too) is at `buffer`.
pub fn write_unicode_at(uc: &mut Uc, at: u64, buffer: u64, units: &[u16]) {
    let bytes = utf16_bytes(units);
    uc.write_u16(at, bytes.len() as u16);
    uc.write_u16(at + 2, bytes.len() as u16);
    uc.write_u64(at + 8, buffer);
    uc.write_bytes(buffer, &bytes);
}
