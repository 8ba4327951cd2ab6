//! A check on the compiled driver as it runs: every store into a ring
//! lane's producer state (`prod_pos`, the cached consumer position, the
//! reserved counts, the reservation lock) happens at DISPATCH_LEVEL, inside
//! the window the reservation raises IRQL for. A store the compiler moved
//! across the `mov cr8` that lowers IRQL (an IRQL change that is not a
//! compiler barrier) would land at the callback's IRQL, where another
//! thread can run on the same CPU and reserve in the same lane.
//!
//! The lanes are found the way a debugger would find them without symbols:
//! the ring's pool block (tag `Rsid`) is the first lane's data, and the
//! producer's copy of that pointer sits at a known offset in the lane
//! (`ringside_ring::ring::lane_layout`), in the image's data.

use unicorn_engine::RegisterX86;
use unicorn_engine::unicorn_const::{HookType, MemType};

use crate::machine::{DISPATCH_LEVEL, Kernel, Machine};
use crate::memory::*;
use crate::verifier::Rule;
use ringside_ring::ring::lane_layout::{
    DRAIN_DATA_POINTER, LANE_SIZE, PRODUCER_DATA_POINTER, PRODUCER_OFFSET, PRODUCER_SIZE,
};

/// What the watch saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaneStores {
    /// Stores into producer state at DISPATCH_LEVEL or above.
    pub raised: u64,
    /// Stores into producer state below DISPATCH_LEVEL (each also a finding).
    pub below: u64,
}

impl Machine {
    /// Starts watching the lanes of the driver's ring (after DriverEntry).
    /// Returns how many lanes were found.
    pub fn watch_lane_stores(&mut self) -> Result<usize, String> {
        let ring = self
            .kernel()
            .pool
            .live
            .iter()
            .find(|(_, b)| b.driver && &b.tag.to_le_bytes() == b"Rsid")
            .map(|(a, _)| *a)
            .ok_or("no ring allocation (tag Rsid)")?;
        // The lanes: of the places holding the ring's address where a lane
        // would, the one starting the longest run of lanes (lane `i` holds
        // `ring + i * capacity`); the driver's own `ring_memory` field and a
        // lane's second copy of its layout hold the address too.
        let (lane0, lanes) = self
            .lane_candidates(ring)
            .into_iter()
            .map(|lane0| (lane0, self.lane_run(lane0, ring)))
            .max_by_key(|&(lane0, lanes)| (lanes, lane0))
            .ok_or("the ring's lanes are not in the image's data")?;
        let end = lane0 + (lanes * LANE_SIZE) as u64 - 1;
        self.uc
            .add_mem_hook(
                HookType::MEM_WRITE,
                lane0,
                end,
                move |uc: &mut unicorn_engine::Unicorn<'_, Kernel>,
                      _kind: MemType,
                      address: u64,
                      _size: usize,
                      _value: i64| {
                    let within = ((address - lane0) % LANE_SIZE as u64) as usize;
                    if !(PRODUCER_OFFSET..PRODUCER_OFFSET + PRODUCER_SIZE).contains(&within) {
                        return true;
                    }
                    let level = uc.get_data().irql;
                    let rip = uc.reg_read(RegisterX86::RIP).unwrap_or(0);
                    let k = uc.get_data_mut();
                    if level >= DISPATCH_LEVEL {
                        k.lane_stores.raised += 1;
                    } else {
                        k.lane_stores.below += 1;
                        k.verifier.report(
                            Rule::Irql,
                            format!(
                                "store into lane {} producer state (+{within:#x}) at IRQL {level} from ringside.sys+{:#x}: outside the reservation's raised window",
                                (address - lane0) / LANE_SIZE as u64,
                                rip.wrapping_sub(IMAGE_BASE)
                            ),
                        );
                    }
                    true
                },
            )
            .map_err(|e| format!("hook: {e:?}"))?;
        Ok(lanes)
    }

    /// Addresses in the image's writable sections, 128-aligned, whose
    /// producer and consumer data-pointer words both hold `ring`.
    fn lane_candidates(&self, ring: u64) -> Vec<u64> {
        let mut found = Vec::new();
        for section in self.image.sections.iter().filter(|s| s.write) {
            let start = IMAGE_BASE + u64::from(section.rva);
            let bytes = self.uc.read_bytes(start, section.size as usize);
            for (i, word) in bytes.chunks_exact(8).enumerate() {
                let at = start + 8 * i as u64;
                if u64::from_le_bytes(word.try_into().unwrap_or_default()) == ring
                    && let Some(lane0) = at.checked_sub(PRODUCER_DATA_POINTER as u64)
                    && lane0 % 128 == 0
                    && self.uc.try_read_bytes(lane0 + DRAIN_DATA_POINTER as u64, 8)
                        == Some(ring.to_le_bytes().to_vec())
                {
                    found.push(lane0);
                }
            }
        }
        found
    }

    /// How many lanes from `lane0` hold `ring + i * capacity`.
    fn lane_run(&self, lane0: u64, ring: u64) -> usize {
        let data = |i: usize| {
            self.uc
                .try_read_bytes(lane0 + (i * LANE_SIZE + PRODUCER_DATA_POINTER) as u64, 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
        };
        let capacity = data(1).map_or(0, |second| second.wrapping_sub(ring));
        if capacity == 0 || capacity > 1 << 31 {
            return 1;
        }
        let mut lanes = 1;
        while lanes < ringside_ring::MAX_LANES
            && data(lanes) == Some(ring + lanes as u64 * capacity)
        {
            lanes += 1;
        }
        lanes
    }

    /// The stores seen since [`Machine::watch_lane_stores`].
    pub fn lane_stores(&self) -> LaneStores {
        self.kernel().lane_stores
    }
}
