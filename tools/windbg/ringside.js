"use strict";

// ringside.js: a WinDbg JavaScript extension with one command, !ringside,
// that prints the state of a loaded ringside.sys from its global
// RINGSIDE_GLOBALS (driver/src/kernel/globals.rs), read by symbol with the
// types of ringside.pdb: the ring (size, lanes, each lane's producer and
// consumer positions and bytes pending), per-kind produced / delivered / dropped counters, drops by
// reason, the consumer connection and configuration, and the pending READs.
//
// Use (kernel debugger, symbols for ringside.sys loaded, docs/windows-vm.md):
//     .scriptload C:\ringside\ringside.js
//     !ringside
//     dx @$scriptContents.ringside()      (the same, as a data-model call)
//
// Every field this script reads is named in PATHS below, relative to the
// type GLOBALS_TYPE. `cargo xtask test` (xtask/src/windbg_check.rs) reads
// this manifest from this file and checks every name against the
// ringside.pdb that `cargo xtask package` built: the symbol, the type, each
// field of each path, that each path ends in a scalar, and that each array
// has the length named in brackets. A rename in the driver fails that test,
// not your debugging session. Reads go only through `at()` with a PATHS
// entry; do not add direct field accesses.
//
// The paths include the wrappers Rust's debug info shows for atomics
// (`.v.value`, `.p.value`), for MaybeUninit/ManuallyDrop
// (`.value.value.value`) and for tuple structs (`.__0`).

// ---- ringside manifest (checked against ringside.pdb) ----
const MODULE = "ringside";
const GLOBALS_SYMBOL = "RINGSIDE_GLOBALS";
const GLOBALS_TYPE = "ringside::kernel::globals::Globals";
// Counter index order of ringside_wire::EventKind::ALL (EventKind::name()).
const KINDS = [
    "process_create",
    "process_exit",
    "image_load",
    "file_create",
    "file_write",
    "file_rename",
    "file_delete",
    "file_close_modified",
    "registry_set_value",
    "registry_key",
    "registry_rename",
    "process_access",
    "remote_thread",
    "named_pipe",
];
// Counter index order of ringside_wire::DropReason.
const DROP_REASONS = ["RingFull", "Irql", "QueryFailed", "EncodeFailed", "Contention"];
// driver/src/kernel/queue.rs MAX_PENDING_READS.
const MAX_PENDING_READS = 16;
// crates/ring/src/ring.rs MAX_LANES (the ring's lane array; `lane_count` are used).
const MAX_LANES = 64;
const PATHS = {
    magic: "magic",
    acquired: "acquired.v.value",
    ringMemory: "ring_memory.p.value",
    ringSize: "ring_size.v.value",
    ringReady: "ring_ready.v.value",
    ringCapacity: "ring.__0.value.value.value.__0.capacity",
    laneCount: "ring.__0.value.value.value.__0.lane_count",
    exclusiveLanes: "exclusive_lanes.v.value",
    // Per lane (first index): prod_pos, cons_pos.
    producerPos: "ring.__0.value.value.value.__0.lanes[MAX_LANES].producer.pos.v.value",
    consumerPos: "ring.__0.value.value.value.__0.lanes[MAX_LANES].drain.__0.consumed.v.value",
    lostPending: "ring.__0.value.value.value.__0.drops.__0.lost_pending.v.value",
    draining: "ring.__0.value.value.value.__0.consumer.__0.draining.v.value",
    nextSeq: "ring.__0.value.value.value.__0.consumer.__0.next_seq.v.value",
    delivered: "ring.__0.value.value.value.__0.consumer.__0.delivered[KINDS].v.value",
    // produced = reserved (got space, summed over the lanes) + unreserved
    // (dropped before or at reserve). Indexed by lane, then kind.
    reserved: "ring.__0.value.value.value.__0.lanes[MAX_LANES].producer.reserved[KINDS].v.value",
    unreserved: "ring.__0.value.value.value.__0.drops.__0.unreserved[KINDS].v.value",
    dropped: "ring.__0.value.value.value.__0.drops.__0.per_kind[KINDS].v.value",
    droppedByReason: "ring.__0.value.value.value.__0.drops.__0.per_reason[DROP_REASONS].v.value",
    lostRecords: "ring.__0.value.value.value.__0.drops.__0.lost_records.v.value",
    filter: "filter.v.value",
    device: "device.p.value",
    consumerConnected: "control.consumer.v.value",
    negotiated: "control.negotiated.v.value",
    eventMask: "control.config.event_mask.v.value",
    // Both string caps: name in the low 16 bits, command line in the high.
    caps: "control.config.caps.v.value",
    batchBytes: "control.config.batch_bytes.v.value",
    maxLatencyMs: "control.config.max_latency_ms.v.value",
    pendingCount: "pending.len.v.value",
    pendingSlotsLen: "pending.slots.value.len",
    pendingSlotTag: "pending.slots.value.items[MAX_PENDING_READS].tag",
    pendingSlotIrp: "pending.slots.value.items[MAX_PENDING_READS].variant1.value.__0",
    timerArmed: "timer_armed.v.value",
    readsCompleted: "reads_completed.v.value",
};
// ---- end of manifest ----

// b"RINGSIDE" read as a little-endian u64.
const MAGIC = "0x45444953474e4952";
// Bits of Globals::acquired (globals.rs, mod acquired).
const ACQUIRED_BITS = ["RING", "DEVICE", "SYMLINK", "FILTER", "PROCESS_NOTIFY", "IMAGE_NOTIFY", "TIMER"];
// Option<T>'s discriminant for Some in the debug info's `tag` field.
const SOME_TAG = 1;

function log(text) {
    host.diagnostics.debugLog(text + "\n");
}

// The value at `path` (a PATHS entry) below `root`; `index` selects the
// element of the one array segment ("name[COUNT]") the path may contain.
// The field at `path`; each `[COUNT]` segment takes the next of `indices`.
function at(root, path, ...indices) {
    let value = root;
    let next = 0;
    const segments = path.split(".");
    for (let i = 0; i < segments.length; i++) {
        const segment = segments[i];
        const bracket = segment.indexOf("[");
        if (bracket >= 0) {
            value = value[segment.substring(0, bracket)][indices[next++]];
        } else {
            value = value[segment];
        }
    }
    return value;
}

// 64-bit values arrive as host.Int64 objects, narrower ones as numbers.
function int64(value) {
    if (typeof value === "number" || typeof value === "boolean") {
        return new host.Int64(Number(value));
    }
    return value;
}

function dec(value) {
    return int64(value).toString(10);
}

function hex(value) {
    return "0x" + int64(value).toString(16);
}

function flag(value) {
    return Number(value) !== 0 ? "yes" : "no";
}

function pad(text, width) {
    let out = String(text);
    while (out.length < width) {
        out = out + " ";
    }
    return out;
}

function padLeft(text, width) {
    let out = String(text);
    while (out.length < width) {
        out = " " + out;
    }
    return out;
}

function acquiredNames(bits) {
    const names = [];
    for (let i = 0; i < ACQUIRED_BITS.length; i++) {
        if ((bits & (1 << i)) !== 0) {
            names.push(ACQUIRED_BITS[i]);
        }
    }
    return names.length === 0 ? "none" : names.join("|");
}

function globals() {
    // The type name makes the lookup work whether the debugger resolves the
    // public symbol (untyped) or the typed global data symbol.
    return host.getModuleSymbol(MODULE, GLOBALS_SYMBOL, GLOBALS_TYPE);
}

function printRing(g) {
    if (Number(at(g, PATHS.ringReady)) === 0) {
        log("ring:        not installed (ring_ready = 0): DriverEntry failed early or teardown ran");
        return;
    }
    const lanes = Number(at(g, PATHS.laneCount));
    log("ring:        " + dec(at(g, PATHS.ringCapacity)) + " bytes at " + hex(at(g, PATHS.ringMemory)) +
        " (registry-clamped size " + dec(at(g, PATHS.ringSize)) + "), " + lanes + " lanes, " +
        (Number(at(g, PATHS.exclusiveLanes)) !== 0 ? "one per CPU (no lock)" : "shared by CPU number (locked)"));
    for (let l = 0; l < lanes; l++) {
        const prod = int64(at(g, PATHS.producerPos, l));
        const cons = int64(at(g, PATHS.consumerPos, l));
        log("  lane " + padLeft(String(l), 2) + "    producer " + dec(prod) + "   consumer " + dec(cons) +
            "   pending bytes " + dec(prod.subtract(cons)));
    }
    log("  next seq   " + dec(at(g, PATHS.nextSeq)) + "   lost records " + dec(at(g, PATHS.lostRecords)) +
        "   lost pending " + flag(at(g, PATHS.lostPending)) + "   draining " + flag(at(g, PATHS.draining)));
    log("");
    log("  " + pad("kind", 22) + padLeft("produced", 14) + padLeft("delivered", 14) + padLeft("dropped", 14) +
        padLeft("in ring", 10));
    for (let k = 0; k < KINDS.length; k++) {
        let produced = int64(at(g, PATHS.unreserved, k));
        for (let l = 0; l < lanes; l++) {
            produced = produced.add(int64(at(g, PATHS.reserved, l, k)));
        }
        const delivered = int64(at(g, PATHS.delivered, k));
        const dropped = int64(at(g, PATHS.dropped, k));
        // produced == delivered + dropped once the ring is drained; the
        // difference is what is still in the ring (DESIGN.md, principle 3).
        const inRing = produced.subtract(delivered).subtract(dropped);
        log("  " + pad(KINDS[k], 22) + padLeft(dec(produced), 14) + padLeft(dec(delivered), 14) +
            padLeft(dec(dropped), 14) + padLeft(dec(inRing), 10));
    }
    const reasons = [];
    for (let r = 0; r < DROP_REASONS.length; r++) {
        reasons.push(DROP_REASONS[r] + "=" + dec(at(g, PATHS.droppedByReason, r)));
    }
    log("  drops by reason: " + reasons.join(" "));
}

function printConsumer(g) {
    log("");
    log("consumer:    connected " + flag(at(g, PATHS.consumerConnected)) + "   HELLO done " +
        flag(at(g, PATHS.negotiated)) + "   device " + hex(at(g, PATHS.device)) + "   filter " +
        hex(at(g, PATHS.filter)));
    const caps = Number(at(g, PATHS.caps));
    log("  config     event mask " + hex(at(g, PATHS.eventMask)) + "   name cap " + (caps & 0xffff) +
        "   command-line cap " + (caps >>> 16) + "   batch " + dec(at(g, PATHS.batchBytes)) +
        " bytes   latency " + dec(at(g, PATHS.maxLatencyMs)) + " ms");
    const queued = Number(at(g, PATHS.pendingSlotsLen));
    log("  READs      pending " + dec(at(g, PATHS.pendingCount)) + " (queue holds " + queued + " of " +
        MAX_PENDING_READS + ")   completed " + dec(at(g, PATHS.readsCompleted)) + "   timer armed " +
        flag(at(g, PATHS.timerArmed)));
    for (let i = 0; i < MAX_PENDING_READS && i < queued; i++) {
        if (Number(at(g, PATHS.pendingSlotTag, i)) === SOME_TAG) {
            const irp = hex(at(g, PATHS.pendingSlotIrp, i));
            log("    [" + i + "] IRP " + irp + "   (!irp " + irp + ")");
        }
    }
}

function ringside() {
    const g = globals();
    const magic = hex(at(g, PATHS.magic));
    if (magic !== MAGIC) {
        log("RINGSIDE_GLOBALS magic is " + magic + ", expected " + MAGIC +
            ": wrong symbols for this ringside.sys? (.reload /f ringside.sys)");
    }
    const bits = Number(at(g, PATHS.acquired));
    log("ringside:    globals at " + hex(host.getModuleSymbolAddress(MODULE, GLOBALS_SYMBOL)) +
        "   acquired " + hex(bits) + " (" + acquiredNames(bits) + ")");
    printRing(g);
    printConsumer(g);
}

function initializeScript() {
    return [
        new host.apiVersionSupport(1, 7),
        new host.functionAlias(ringside, "ringside"),
    ];
}
