//! Kernel cost budget: instructions executed inside ringside.sys per
//! callback kind must stay within budget, and are deterministic.
//!
//! Target: < 400 instructions per event. First measurement (CAS
//! reservation, consumer zeroing): process create 513, process exit 116,
//! image load 278, post-create 360, first write 462, rename 448, delete 365,
//! close-after-modify 423.
//!
//! Then the ring moved to the BPF-style reservation (bounded try-lock, busy
//! tag written before `prod_pos` is published: no consumer zeroing, no
//! stale-tag window) and the driver began holding DISPATCH_LEVEL around
//! `reserve` (a CR8 raise and lower): process create 540, process exit 224,
//! image load 326, post-create 364 (read-only open, no event: 63), first
//! write 500 (again: 52), rename 485, delete 404, close-after-modify 414.
//!
//! Current measurement (`cargo xtask bench driver`; `--profile` shows where
//! they go), after the first-write set's hash took the product's top bits
//! and its removals left tombstones (lookups stop at a never-used slot),
//! process create encoded the token SIDs in place, and the encoder laid a
//! record out once into the exact reservation (`encode_exact`): process
//! create 435, process exit 221, image load 295, post-create 341
//! (read-only: 63), first write 346 (again: 39), rename 452, delete 376,
//! close-after-modify 320. Process create and rename still exceed the
//! target; of each, about 120 instructions are the ring's own (`reserve`,
//! `commit`).
//!
//! After the ring got one lane per CPU (reserved at DISPATCH_LEVEL with no
//! lock and no read-modify-write, the lane from
//! `KeGetCurrentProcessorNumberEx`): process create 435, rename 456; the
//! lanes cost ~25 instructions per event on this one-CPU model, in exchange
//! for no locked instruction and no cache line shared between CPUs (what
//! instruction counts do not show; `cargo xtask bench ring` does).
//!
//! Then the batch check read only the committing lane's backlog (returned
//! by `commit`) instead of summing every lane, `DispatchRing::reserve` and
//! the ring's reservation path were inlined (`inline(always)`: left to
//! LLVM, small changes flipped its decisions and cost ~40 per event), both
//! string caps became one atomic load, and empty UNICODE_STRINGs lost their
//! special case: process create 395, process exit 162, image load 250,
//! post-create 302 (read-only: 63), first write 305 (again: 39), rename
//! 407, delete 325, close-after-modify 274. (Forcing more inlining into
//! rename, or simplifying the encoder's size check, measured worse: the
//! check is what lets the compiler drop the copies' bounds checks.)
//!
//! Current measurement, after `encoded_len` rounded up with an add and a
//! mask (`checked_next_multiple_of` cost a branch and a second check, and
//! hid from the compiler that the ring's own rounding changes nothing),
//! each lane's share of `batch_bytes` was computed once, at CONFIGURE,
//! instead of after every event, and the ring's tag table kept one
//! precomputed mask: process create 371, process exit 157, image load 226,
//! post-create 279 (read-only: 63), first write 280 (again: 39), rename
//! 383, delete 302, close-after-modify 248. Every kind is under the target.
//!
//! Then process creation began copying the token's logon session
//! (`LogonId`/`LogonGuid`). Through a third `SeQueryInformationToken`
//! (TokenStatistics), its `ExFreePoolWithTag`, the 8-byte copy and the flag
//! bit, it cost 35 instructions (406, over the target by 6) and a pool
//! allocation. Through `SeQueryAuthenticationIdToken` (ntifs.h), which
//! writes the LUID into the driver's own variable, it costs 29 and
//! allocates nothing: process create 400, at the target. The same
//! measurement, with wire ABI 2: process exit 157, image load 226,
//! post-create 279 (read-only: 63), first write 281 (again: 39), rename
//! 455, delete 422, close-after-modify 249.
//!
//! Then the registry callback arrived (Sysmon 13): a value set, its
//! pre-notification (one compare) and its post-notification (rundown, the
//! key's object name from CmCallbackGetKeyObjectIDEx and its release, value
//! name, type and data copied raw), 336; a failed set, reported as
//! nothing, 61. Every other kind unchanged.
//!
//! Then the object manager's callbacks arrived (Sysmon 10): a process
//! open, its pre-operation callback (the desired access into CallContext)
//! and its post-operation callback (rundown, target id, a 16-frame
//! user-mode walk, the record), 288; a failed open, reported as nothing,
//! 44; either with the kind switched off by CONFIGURE, 34 for the two
//! callbacks (a load and a branch each, and the trampolines). Counter
//! indices became a `match` (kind 12 sits at index 9), which cost the
//! other kinds 0 or 1 instruction each.
//! Then the thread-creation routine (Sysmon 8): a thread created in
//! another process (two compares, the kind's bit, rundown, the start
//! address through PsLookupThreadByThreadId, ObOpenObjectByPointer,
//! ZwQueryInformationThread, ZwClose and ObfDereferenceObject, a 24-byte
//! record), 214; a thread a process creates in itself, the common case,
//! reported as nothing, 26; the remote thread with the kind switched off
//! by CONFIGURE, 29 (three instructions, one branch, more than the local
//! thread). The tenth kind moved four other rows by one instruction
//! (process create 399, exit 158, image load 227, post-create 280).
//!
//! Then named pipes (Sysmon 17 and 18): a pipe created (post
//! IRP_MJ_CREATE_NAMED_PIPE: the kind's bit, the status, rundown, the
//! opened name, a 16-byte record and its name), 243; a client's connect
//! (post-create: the compare against the NPFS instance first, then the
//! same), 266; a connect that failed, reported as nothing, 55; with the
//! kind switched off, 9 for a create and 31 for a connect (post-create's
//! own entry and the compare). The compare cost every file open 8
//! instructions (read-only post-create 63 to 71); the one in pre-write,
//! made only while FileWrite or FileCloseModified is on, 7 (again) and 8
//! (first write). Renames and deletes have none (NPFS refuses both).
//! Every write into a pipe now reaches pre-write: with both kinds off (the
//! default) it reads their bits before taking a rundown reference, 18
//! instructions and no kernel call (27 and a rundown reference, acquired
//! and released, before).
//!
//! Budgets are the current values + at most 5%, and no more than the
//! target, so a regression fails.

use ringside_kmodel::cost::measure;
use ringside_kmodel::driver_image::ringside_sys;

const BUDGET: [(&str, u64); 28] = [
    // Measured 401 since the per-kind counters grew to 11 kinds.
    ("process create", 405),      // measured 401 (371 before LogonId)
    ("process exit", 164),        // measured 157
    ("image load", 237),          // measured 226
    ("post-create (event)", 292), // measured 279
    // Post-create first asks whether the open is on the named-pipe
    // instance (a client connecting to a pipe, never a FileCreate): +8.
    ("post-create (read-only, no event)", 74), // measured 71 (63 before pipes)
    // A write into a pipe is not a file write: the NPFS compare, only
    // while FileWrite or FileCloseModified is on (+7 again; the first
    // write gained 8, with the kinds' bits now read before rundown).
    ("pre-write (first write)", 303), // measured 289 (281 before pipes)
    ("pre-write (again, no event)", 48), // measured 46 (39 before pipes)
    // Renames and deletes measured 455 and 422 before the NPFS compare
    // (a pipe is not renamed or deleted as a file; 383 and 302 before they
    // were reported at the post-operation).
    ("set-information (rename, pre + post)", 490), // measured 476
    ("set-information (delete, pre + post)", 448), // measured 435
    ("pre-cleanup (close after modify)", 260),     // measured 249
    // The callback now tells apart 7 notification classes (a table load
    // for every class, ignored ones included): +20 and +19 over the
    // value-set-only callback.
    ("registry callback (value set, pre + post)", 372), // measured 356 (336 before)
    ("registry callback (failed set, no event)", 84),   // measured 80 (61 before)
    ("registry callback (create key, pre + post)", 424), // measured 404
    ("registry callback (delete key, pre + post)", 452), // measured 432
    ("registry callback (delete value, pre + post)", 430), // measured 410
    ("registry callback (rename key, pre + post)", 417), // measured 397
    ("thread notify (remote thread)", 224),             // measured 214
    ("thread notify (local thread, no event)", 27),     // measured 26
    ("thread notify (remote thread, kind disabled)", 30), // measured 29
    ("object callbacks (process open, pre + post)", 302), // measured 288
    ("object callbacks (failed open, no event)", 46),   // measured 44
    ("object callbacks (kind disabled)", 35),           // measured 34
    ("pipe create (event)", 255),                       // measured 248
    ("pipe connect (event)", 279),                      // measured 271
    ("pipe connect (failed, no event)", 64), // measured 61 (55 before STATUS_REPARSE was told apart)
    ("pipe create (kind disabled)", 9),      // measured 9
    ("pipe connect (kind disabled)", 32),    // measured 31
    ("pre-write (kinds off, no event)", 18), // measured 18 (27 and a rundown reference before)
];

/// The expensive kernel calls each invocation makes, pinned: (name
/// queries, token queries). A name query walks FltMgr's name cache or the
/// file system; a token query allocates. One more of either on a callback
/// is a cost the instruction counts above do not show.
const EXPENSIVE: [(&str, u64, u64); 28] = [
    // TokenUser, TokenIntegrityLevel (the logon session's
    // SeQueryAuthenticationIdToken allocates nothing).
    ("process create", 0, 2),
    ("process exit", 0, 0),
    ("image load", 0, 0),
    ("post-create (event)", 1, 0),
    ("post-create (read-only, no event)", 0, 0),
    ("pre-write (first write)", 1, 0),
    ("pre-write (again, no event)", 0, 0),
    ("set-information (rename, pre + post)", 2, 0),
    ("set-information (delete, pre + post)", 1, 0),
    ("pre-cleanup (close after modify)", 1, 0),
    // CmCallbackGetKeyObjectIDEx is counted with the name queries below.
    ("registry callback (value set, pre + post)", 1, 0),
    ("registry callback (failed set, no event)", 0, 0),
    // One key-name query each: at the pre-notification for a delete or a
    // rename, at the post-notification otherwise.
    ("registry callback (create key, pre + post)", 1, 0),
    ("registry callback (delete key, pre + post)", 1, 0),
    ("registry callback (delete value, pre + post)", 1, 0),
    ("registry callback (rename key, pre + post)", 1, 0),
    // A thread lookup and a handle, no name or token query.
    ("thread notify (remote thread)", 0, 0),
    ("thread notify (local thread, no event)", 0, 0),
    ("thread notify (remote thread, kind disabled)", 0, 0),
    // RtlWalkFrameChain reads the user stack: pinned below, once per event.
    ("object callbacks (process open, pre + post)", 0, 0),
    ("object callbacks (failed open, no event)", 0, 0),
    ("object callbacks (kind disabled)", 0, 0),
    // One opened-name query for a pipe created or connected; none for a
    // failed connect or a disabled kind.
    ("pipe create (event)", 1, 0),
    ("pipe connect (event)", 1, 0),
    ("pipe connect (failed, no event)", 0, 0),
    ("pipe create (kind disabled)", 0, 0),
    ("pipe connect (kind disabled)", 0, 0),
    ("pre-write (kinds off, no event)", 0, 0),
];

#[test]
fn kernel_api_calls_per_callback_are_reported_and_pinned() {
    let sys = ringside_sys().expect("build ringside.sys");
    let costs = measure(sys).expect("measure");
    let per_call = |cost: &ringside_kmodel::cost::Cost, names: &[&str]| -> u64 {
        let total: u64 = names
            .iter()
            .map(|n| cost.api_calls.get(n).copied().unwrap_or(0))
            .sum();
        assert_eq!(
            total % ringside_kmodel::cost::RUNS,
            0,
            "{}: {names:?} not called the same number of times each invocation",
            cost.callback
        );
        total / ringside_kmodel::cost::RUNS
    };
    let mut wrong = Vec::new();
    for (cost, (callback, names, tokens)) in costs.iter().zip(EXPENSIVE) {
        assert_eq!(cost.callback, callback);
        println!("{callback:<40} {}", cost.api_text());
        let got_names = per_call(
            cost,
            &[
                "FltGetFileNameInformation",
                "FltGetDestinationFileNameInformation",
                "CmCallbackGetKeyObjectIDEx",
            ],
        );
        let got_tokens = per_call(cost, &["SeQueryInformationToken"]);
        // A stack walk reads user memory: once per process access event,
        // never for a failed open or a disabled kind.
        let walks = per_call(cost, &["RtlWalkFrameChain"]);
        let expected_walks = u64::from(callback == "object callbacks (process open, pre + post)");
        if walks != expected_walks {
            wrong.push(format!(
                "{callback}: {walks} stack walks, pinned {expected_walks}"
            ));
        }
        if (got_names, got_tokens) != (names, tokens) {
            wrong.push(format!(
                "{callback}: {got_names} name and {got_tokens} token queries, pinned {names} and {tokens}"
            ));
        }
        // Every name handed out is released in the same invocation.
        assert_eq!(
            per_call(
                cost,
                &[
                    "FltReleaseFileNameInformation",
                    "CmCallbackReleaseKeyObjectIDEx"
                ]
            ),
            got_names,
            "{callback}: {}",
            cost.api_text()
        );
        // Every thread reference and handle taken is released in the same
        // invocation.
        assert_eq!(
            per_call(cost, &["PsLookupThreadByThreadId"]),
            per_call(cost, &["ObfDereferenceObject"]),
            "{callback}: {}",
            cost.api_text()
        );
        assert_eq!(
            per_call(cost, &["ObOpenObjectByPointer"]),
            per_call(cost, &["ZwClose"]),
            "{callback}: {}",
            cost.api_text()
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn instructions_per_callback_are_deterministic_and_within_budget() {
    let sys = ringside_sys().expect("build ringside.sys");
    let first = measure(sys).expect("measure");
    let second = measure(sys).expect("measure again");
    assert_eq!(first, second, "instruction counts are not deterministic");
    assert_eq!(first.len(), BUDGET.len());
    let mut over = Vec::new();
    for (cost, (callback, budget)) in first.iter().zip(BUDGET) {
        assert_eq!(cost.callback, callback);
        println!("{callback:<46} {:>5} (budget {budget})", cost.instructions);
        assert!(
            cost.instructions > 0,
            "{callback}: no driver instructions counted"
        );
        if cost.instructions > budget {
            over.push(format!(
                "{callback}: {} > budget {budget}",
                cost.instructions
            ));
        }
    }
    assert!(over.is_empty(), "over budget:\n  {}", over.join("\n  "));
}
