//! The guest address space: where the model places the driver image, the
//! import trampolines, the stack, the processor block and pool, and small
//! typed accessors over Unicorn's memory.

use unicorn_engine::Unicorn;
use unicorn_engine::unicorn_const::Permission as Prot;

use crate::machine::Kernel;

/// The CPU with the kernel model as its data.
pub type Uc = Unicorn<'static, Kernel>;

pub const PAGE: u64 = 0x1000;

/// Where the driver image is loaded. Deliberately not the linker's preferred
/// base (0x1_4000_0000 for rust-lld), so every base relocation must be applied.
pub const IMAGE_BASE: u64 = 0x0000_0806_4A20_0000;
/// One 16-byte slot per import; each slot holds `ret` (0xC3). A code hook on
/// this page dispatches to the model function before the `ret` executes.
pub const HOOK_BASE: u64 = 0x0000_0800_0100_0000;
pub const HOOK_SLOT: u64 = 16;
pub const HOOK_SIZE: u64 = 0x10_0000;
/// Return address of a host-initiated call: emulation stops when RIP gets here.
pub const RETURN_SENTINEL: u64 = HOOK_BASE + HOOK_SIZE - HOOK_SLOT;
/// The kernel stack: 24 KiB (the real KERNEL_STACK_SIZE on x64) with an
/// unmapped guard page below, so an overflow faults instead of corrupting.
pub const STACK_BASE: u64 = 0x0000_0880_0100_1000;
pub const STACK_SIZE: u64 = 0x6000;
pub const STACK_GUARD: u64 = STACK_BASE - PAGE;
/// KPCR (GS base in kernel mode); KPRCB at +0x180, CurrentThread at +0x188.
pub const KPCR_BASE: u64 = 0x0000_0800_0200_0000;
/// Modelled KTHREAD / EPROCESS blocks (opaque to the driver).
pub const THREAD_BASE: u64 = 0x0000_0800_0300_0000;
/// ntoskrnl's exported object-type variables (`PsProcessType`, ...).
pub const OBJECT_TYPES_BASE: u64 = 0x0000_0800_0400_0000;
/// Pool: every allocation gets its own pages followed by an unmapped gap, so
/// an overrun or a use after free faults at the offending instruction.
pub const POOL_BASE: u64 = 0x0000_0A00_0000_0000;

pub fn round_up(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

/// Protection of a guest mapping (Unicorn enforces read, write and execute).
pub fn prot(read: bool, write: bool, execute: bool) -> Prot {
    let mut prot = Prot::NONE;
    if read {
        prot |= Prot::READ;
    }
    if write {
        prot |= Prot::WRITE;
    }
    if execute {
        prot |= Prot::EXEC;
    }
    prot
}

/// Typed reads and writes of guest memory. A failing access from the model is
/// a model bug or a driver pointer bug: it panics with the address, which the
/// caller turns into a test failure.
pub trait GuestMemory {
    fn read_bytes(&self, address: u64, len: usize) -> Vec<u8>;
    fn write_bytes(&mut self, address: u64, bytes: &[u8]);
    fn try_read_bytes(&self, address: u64, len: usize) -> Option<Vec<u8>>;

    fn read_u8(&self, address: u64) -> u8 {
        self.read_bytes(address, 1)[0]
    }
    fn read_u16(&self, address: u64) -> u16 {
        u16::from_le_bytes(self.read_bytes(address, 2).try_into().unwrap_or([0; 2]))
    }
    fn read_u32(&self, address: u64) -> u32 {
        u32::from_le_bytes(self.read_bytes(address, 4).try_into().unwrap_or([0; 4]))
    }
    fn read_u64(&self, address: u64) -> u64 {
        u64::from_le_bytes(self.read_bytes(address, 8).try_into().unwrap_or([0; 8]))
    }
    fn write_u8(&mut self, address: u64, value: u8) {
        self.write_bytes(address, &[value]);
    }
    fn write_u16(&mut self, address: u64, value: u16) {
        self.write_bytes(address, &value.to_le_bytes());
    }
    fn write_u32(&mut self, address: u64, value: u32) {
        self.write_bytes(address, &value.to_le_bytes());
    }
    fn write_u64(&mut self, address: u64, value: u64) {
        self.write_bytes(address, &value.to_le_bytes());
    }
    /// A `UNICODE_STRING` at `address`: its `Buffer`'s `Length` bytes.
    fn read_unicode_string(&self, address: u64) -> Vec<u16> {
        let length = self.read_u16(address) as usize;
        let buffer = self.read_u64(address + 8);
        if length == 0 || buffer == 0 {
            return Vec::new();
        }
        self.read_bytes(buffer, length)
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    }
}

impl GuestMemory for Uc {
    fn read_bytes(&self, address: u64, len: usize) -> Vec<u8> {
        match self.mem_read_as_vec(address, len) {
            Ok(bytes) => bytes,
            Err(e) => panic!("model read of {len} bytes at {address:#x} failed: {e:?}"),
        }
    }
    fn try_read_bytes(&self, address: u64, len: usize) -> Option<Vec<u8>> {
        self.mem_read_as_vec(address, len).ok()
    }
    fn write_bytes(&mut self, address: u64, bytes: &[u8]) {
        if let Err(e) = self.mem_write(address, bytes) {
            panic!(
                "model write of {} bytes at {address:#x} failed: {e:?}",
                bytes.len()
            );
        }
    }
}

pub fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

pub fn utf16_bytes(s: &[u16]) -> Vec<u8> {
    s.iter().flat_map(|u| u.to_le_bytes()).collect()
}
