//! Pool: `ExAllocatePool2`, `ExAllocatePoolWithTag`, `ExFreePoolWithTag`,
//! `ExFreePool`. Each allocation gets its own pages with an unmapped gap
//! after, and is unmapped when freed, so overruns and uses after free fault.
//! Verifier checks: allocation above DISPATCH_LEVEL (above APC_LEVEL for
//! paged pool), free of an unknown or already freed block, tag mismatch on
//! free, and blocks still allocated when the driver is gone.

use std::collections::BTreeMap;

use crate::machine::{APC_LEVEL, DISPATCH_LEVEL, arg, require_irql};
use crate::memory::*;
use crate::verifier::Rule;

/// `POOL_FLAG_*` (wdm.h).
pub const POOL_FLAG_UNINITIALIZED: u64 = 0x2;
pub const POOL_FLAG_PAGED: u64 = 0x100;
pub const POOL_FLAG_NON_PAGED: u64 = 0x40;
pub const POOL_FLAG_NON_PAGED_EXECUTE: u64 = 0x80;

#[derive(Clone, Debug)]
pub struct Block {
    pub size: u64,
    pub mapped: u64,
    pub tag: u32,
    pub paged: bool,
    /// Allocated by the driver (leak-checked) rather than by the model.
    pub driver: bool,
}

#[derive(Debug)]
pub struct Pool {
    pub next: u64,
    pub live: BTreeMap<u64, Block>,
    pub freed: BTreeMap<u64, Block>,
    pub driver_allocations: usize,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            next: POOL_BASE,
            live: BTreeMap::new(),
            freed: BTreeMap::new(),
            driver_allocations: 0,
        }
    }
}

/// Maps a fresh zeroed block (model or driver owned) and returns its address.
pub fn map_block(uc: &mut Uc, size: u64, driver: bool) -> u64 {
    let mapped = round_up(size.max(1), PAGE);
    let address = uc.get_data().pool.next;
    uc.get_data_mut().pool.next = address + mapped + PAGE;
    if let Err(e) = uc.mem_map(address, mapped as usize, prot(true, true, false)) {
        panic!("pool map failed: {e:?}");
    }
    uc.get_data_mut().pool.live.insert(
        address,
        Block {
            size,
            mapped,
            tag: 0,
            paged: false,
            driver,
        },
    );
    address
}

/// Makes every live paged block inaccessible (`raised`: IRQL went to
/// DISPATCH_LEVEL or above) or accessible again.
pub fn protect_paged(uc: &mut Uc, raised: bool) {
    let paged: Vec<(u64, u64)> = uc
        .get_data()
        .pool
        .live
        .iter()
        .filter(|(_, b)| b.paged)
        .map(|(a, b)| (*a, b.mapped))
        .collect();
    let access = if raised {
        prot(false, false, false)
    } else {
        prot(true, true, false)
    };
    for (address, mapped) in paged {
        let _ = uc.mem_protect(address, mapped as usize, access);
    }
}

/// Whether `address` lies in a live paged pool block.
pub fn is_paged(uc: &Uc, address: u64) -> bool {
    uc.get_data()
        .pool
        .live
        .range(..=address)
        .next_back()
        .is_some_and(|(start, b)| b.paged && address < start + b.mapped)
}

pub fn unmap_block(uc: &mut Uc, address: u64) {
    if let Some(block) = uc.get_data_mut().pool.live.remove(&address) {
        let _ = uc.mem_unmap(address, block.mapped as usize);
        uc.get_data_mut().pool.freed.insert(address, block);
    }
}

fn allocate(uc: &mut Uc, api: &str, flags: u64, size: u64, tag: u32) -> u64 {
    let paged = flags & POOL_FLAG_PAGED != 0;
    require_irql(uc, api, if paged { APC_LEVEL } else { DISPATCH_LEVEL });
    let k = uc.get_data_mut();
    if flags & POOL_FLAG_NON_PAGED_EXECUTE != 0 {
        k.verifier.report(
            Rule::Pool,
            format!("{api}: executable pool requested (tag {})", tag_name(tag)),
        );
    }
    if tag == 0 {
        k.verifier
            .report(Rule::Pool, format!("{api}: zero pool tag"));
    }
    if size == 0 || size > 1 << 32 {
        return 0;
    }
    if k.inject(api) {
        return 0;
    }
    let address = map_block(uc, size, true);
    let k = uc.get_data_mut();
    k.pool.driver_allocations += 1;
    if let Some(block) = k.pool.live.get_mut(&address) {
        block.tag = tag;
        block.paged = paged;
    }
    if flags & POOL_FLAG_UNINITIALIZED != 0 {
        // Uninitialized pool is not zero on Windows: fill it so a driver
        // that relies on zeroing shows it.
        let fill = vec![0xA5; size as usize];
        uc.write_bytes(address, &fill);
    }
    address
}

pub fn tag_name(tag: u32) -> String {
    String::from_utf8_lossy(&tag.to_le_bytes()).into_owned()
}

/// `PVOID ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag)`:
/// zeroed unless POOL_FLAG_UNINITIALIZED; NULL on failure.
pub fn ex_allocate_pool2(uc: &mut Uc) -> u64 {
    let (flags, size, tag) = (arg(uc, 0), arg(uc, 1), arg(uc, 2) as u32);
    if flags & (POOL_FLAG_PAGED | POOL_FLAG_NON_PAGED | POOL_FLAG_NON_PAGED_EXECUTE) == 0 {
        uc.get_data_mut().verifier.report(
            Rule::Pool,
            "ExAllocatePool2 without a pool type flag".to_owned(),
        );
    }
    allocate(uc, "ExAllocatePool2", flags, size, tag)
}

/// `ExAllocatePoolWithTag(POOL_TYPE, SIZE_T, ULONG)` (deprecated; NonPagedPool = 0,
/// PagedPool = 1, NonPagedPoolNx = 512).
pub fn ex_allocate_pool_with_tag(uc: &mut Uc) -> u64 {
    let (pool_type, size, tag) = (arg(uc, 0), arg(uc, 1), arg(uc, 2) as u32);
    let flags = match pool_type {
        1 => POOL_FLAG_PAGED,
        0 => POOL_FLAG_NON_PAGED_EXECUTE,
        _ => POOL_FLAG_NON_PAGED,
    };
    allocate(
        uc,
        "ExAllocatePoolWithTag",
        flags | POOL_FLAG_UNINITIALIZED,
        size,
        tag,
    )
}

fn free(uc: &mut Uc, api: &str, address: u64, tag: Option<u32>) {
    require_irql(uc, api, DISPATCH_LEVEL);
    let k = uc.get_data_mut();
    match k.pool.live.get(&address) {
        Some(block) if block.driver => {
            if let Some(tag) = tag
                && tag != block.tag
            {
                k.verifier.report(
                    Rule::Pool,
                    format!(
                        "{api}({address:#x}): tag {} does not match allocation tag {}",
                        tag_name(tag),
                        tag_name(block.tag)
                    ),
                );
            }
            unmap_block(uc, address);
        }
        Some(_) => k.verifier.report(
            Rule::Pool,
            format!("{api}({address:#x}): freeing memory the driver did not allocate"),
        ),
        None if k.pool.freed.contains_key(&address) => k
            .verifier
            .report(Rule::Pool, format!("{api}({address:#x}): double free")),
        None => k.verifier.report(
            Rule::Pool,
            format!("{api}({address:#x}): not the start of a pool block"),
        ),
    }
}

/// `VOID ExFreePoolWithTag(PVOID P, ULONG Tag)`.
pub fn ex_free_pool_with_tag(uc: &mut Uc) -> u64 {
    let (address, tag) = (arg(uc, 0), arg(uc, 1) as u32);
    // Tag 0 skips the check: ExFreePool(P) is ExFreePoolWithTag(P, 0), the
    // documented way to free pool the kernel allocated for the caller
    // (e.g. SeQueryInformationToken's result).
    free(uc, "ExFreePoolWithTag", address, (tag != 0).then_some(tag));
    0
}

/// `VOID ExFreePool(PVOID P)`.
pub fn ex_free_pool(uc: &mut Uc) -> u64 {
    let address = arg(uc, 0);
    free(uc, "ExFreePool", address, None);
    0
}

/// Driver pool still allocated is a leak once the driver is gone.
pub fn check_leaks(uc: &mut Uc) {
    let leaks: Vec<String> = uc
        .get_data()
        .pool
        .live
        .iter()
        .filter(|(_, b)| b.driver)
        .map(|(a, b)| format!("{a:#x} ({} bytes, tag {})", b.size, tag_name(b.tag)))
        .collect();
    if !leaks.is_empty() {
        uc.get_data_mut().verifier.report(
            Rule::Pool,
            format!("pool leaked by the driver: {}", leaks.join(", ")),
        );
    }
}
