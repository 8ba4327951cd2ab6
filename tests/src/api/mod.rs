//! Modelled kernel APIs, one module per subsystem, and the table that binds
//! an import name to its model. An import without a model fails the load.

pub mod cm;
pub mod flt;
pub mod io;
pub mod ob;
pub mod pool;
pub mod ps;
pub mod reg;
pub mod rtl;
pub mod sync;
pub mod thread;

use crate::memory::Uc;

/// A model function: reads its arguments from the CPU, returns RAX.
pub type Handler = fn(&mut Uc) -> u64;

const TABLE: &[(&str, Handler)] = &[
    ("ExAllocatePool2", pool::ex_allocate_pool2),
    ("ExAllocatePoolWithTag", pool::ex_allocate_pool_with_tag),
    ("ExFreePoolWithTag", pool::ex_free_pool_with_tag),
    ("ExFreePool", pool::ex_free_pool),
    ("KeGetCurrentIrql", sync::ke_get_current_irql),
    ("KfRaiseIrql", sync::kf_raise_irql),
    ("KeLowerIrql", sync::ke_lower_irql),
    ("KfLowerIrql", sync::ke_lower_irql),
    (
        "KeAcquireSpinLockRaiseToDpc",
        sync::ke_acquire_spin_lock_raise_to_dpc,
    ),
    ("KeReleaseSpinLock", sync::ke_release_spin_lock),
    (
        "KeAcquireSpinLockAtDpcLevel",
        sync::ke_acquire_spin_lock_at_dpc_level,
    ),
    (
        "KeReleaseSpinLockFromDpcLevel",
        sync::ke_release_spin_lock_from_dpc_level,
    ),
    (
        "ExInitializeRundownProtection",
        sync::ex_initialize_rundown_protection,
    ),
    (
        "ExReInitializeRundownProtection",
        sync::ex_re_initialize_rundown_protection,
    ),
    (
        "ExAcquireRundownProtection",
        sync::ex_acquire_rundown_protection,
    ),
    (
        "ExReleaseRundownProtection",
        sync::ex_release_rundown_protection,
    ),
    (
        "ExWaitForRundownProtectionRelease",
        sync::ex_wait_for_rundown_protection_release,
    ),
    ("ExRundownCompleted", sync::ex_rundown_completed),
    (
        "KeQuerySystemTimePrecise",
        sync::ke_query_system_time_precise,
    ),
    ("KeQueryInterruptTime", sync::ke_query_interrupt_time),
    ("KeQueryTimeIncrement", sync::ke_query_time_increment),
    (
        "KeGetCurrentProcessorNumberEx",
        sync::ke_get_current_processor_number_ex,
    ),
    (
        "KeQueryMaximumProcessorCountEx",
        sync::ke_query_maximum_processor_count_ex,
    ),
    ("KeInitializeDpc", sync::ke_initialize_dpc),
    ("KeInsertQueueDpc", sync::ke_insert_queue_dpc),
    ("KeRemoveQueueDpc", sync::ke_remove_queue_dpc),
    ("KeFlushQueuedDpcs", sync::ke_flush_queued_dpcs),
    ("KeInitializeTimerEx", sync::ke_initialize_timer_ex),
    ("KeInitializeTimer", sync::ke_initialize_timer),
    ("KeSetTimerEx", sync::ke_set_timer_ex),
    ("KeSetTimer", sync::ke_set_timer),
    ("KeCancelTimer", sync::ke_cancel_timer),
    ("KeBugCheckEx", sync::ke_bug_check_ex),
    ("memcpy", rtl::memcpy),
    ("memmove", rtl::memcpy),
    ("memset", rtl::memset),
    ("memcmp", rtl::memcmp),
    ("__chkstk", rtl::chkstk),
    ("RtlInitUnicodeString", rtl::rtl_init_unicode_string),
    ("IoCreateDevice", io::io_create_device),
    ("IoDeleteDevice", io::io_delete_device),
    ("IoCreateSymbolicLink", io::io_create_symbolic_link),
    ("IoDeleteSymbolicLink", io::io_delete_symbolic_link),
    ("IofCompleteRequest", io::iof_complete_request),
    (
        "MmMapLockedPagesSpecifyCache",
        io::mm_map_locked_pages_specify_cache,
    ),
    ("IoCsqInitializeEx", io::io_csq_initialize_ex),
    ("IoCsqInsertIrpEx", io::io_csq_insert_irp_ex),
    ("IoCsqRemoveNextIrp", io::io_csq_remove_next_irp),
    (
        "SeQuerySubjectContextToken",
        io::se_query_subject_context_token,
    ),
    ("SeTokenIsAdmin", io::se_token_is_admin),
    (
        "PsSetCreateProcessNotifyRoutineEx",
        ps::ps_set_create_process_notify_routine_ex,
    ),
    (
        "PsSetLoadImageNotifyRoutine",
        ps::ps_set_load_image_notify_routine,
    ),
    (
        "PsSetLoadImageNotifyRoutineEx",
        ps::ps_set_load_image_notify_routine_ex,
    ),
    (
        "PsRemoveLoadImageNotifyRoutine",
        ps::ps_remove_load_image_notify_routine,
    ),
    ("PsGetCurrentProcessId", ps::ps_get_current_process_id),
    ("PsGetCurrentThreadId", ps::ps_get_current_thread_id),
    ("PsGetProcessExitStatus", ps::ps_get_process_exit_status),
    ("PsGetProcessId", ps::ps_get_process_id),
    ("PsReferencePrimaryToken", ps::ps_reference_primary_token),
    (
        "PsDereferencePrimaryToken",
        ps::ps_dereference_primary_token,
    ),
    ("SeQueryInformationToken", ps::se_query_information_token),
    (
        "SeQueryAuthenticationIdToken",
        ps::se_query_authentication_id_token,
    ),
    ("CmRegisterCallbackEx", cm::cm_register_callback_ex),
    ("CmUnRegisterCallback", cm::cm_unregister_callback),
    (
        "CmCallbackGetKeyObjectIDEx",
        cm::cm_callback_get_key_object_id_ex,
    ),
    (
        "CmCallbackReleaseKeyObjectIDEx",
        cm::cm_callback_release_key_object_id_ex,
    ),
    ("ObRegisterCallbacks", ob::ob_register_callbacks),
    ("ObUnRegisterCallbacks", ob::ob_unregister_callbacks),
    ("PsGetThreadId", ob::ps_get_thread_id),
    ("PsGetThreadProcessId", ob::ps_get_thread_process_id),
    ("RtlWalkFrameChain", ob::rtl_walk_frame_chain),
    // Data imports: the IAT slot holds the variable's address
    // (`data_address`); reaching one as code is a fault.
    ("PsProcessType", ob::data_import_called),
    ("PsThreadType", ob::data_import_called),
    (
        "PsSetCreateThreadNotifyRoutine",
        thread::ps_set_create_thread_notify_routine,
    ),
    (
        "PsRemoveCreateThreadNotifyRoutine",
        thread::ps_remove_create_thread_notify_routine,
    ),
    (
        "PsLookupThreadByThreadId",
        thread::ps_lookup_thread_by_thread_id,
    ),
    ("ObfDereferenceObject", thread::obf_dereference_object),
    ("ObOpenObjectByPointer", thread::ob_open_object_by_pointer),
    (
        "ZwQueryInformationThread",
        thread::zw_query_information_thread,
    ),
    ("ZwOpenKey", reg::zw_open_key),
    ("ZwQueryValueKey", reg::zw_query_value_key),
    ("ZwClose", reg::zw_close),
    ("FltRegisterFilter", flt::flt_register_filter),
    ("FltStartFiltering", flt::flt_start_filtering),
    ("FltUnregisterFilter", flt::flt_unregister_filter),
    (
        "FltGetFileNameInformation",
        flt::flt_get_file_name_information,
    ),
    (
        "FltGetDestinationFileNameInformation",
        flt::flt_get_destination_file_name_information,
    ),
    (
        "FltReleaseFileNameInformation",
        flt::flt_release_file_name_information,
    ),
    (
        "FltReferenceFileNameInformation",
        flt::flt_reference_file_name_information,
    ),
    (
        "FltGetRequestorProcessId",
        flt::flt_get_requestor_process_id,
    ),
];

/// The address a data import's IAT slot holds (the variable's), by name;
/// `None` for a function.
pub fn data_address(name: &str) -> Option<u64> {
    ob::DATA.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

/// The model of an imported function, by name.
pub fn lookup(name: &str) -> Option<Handler> {
    TABLE.iter().find(|(n, _)| *n == name).map(|(_, h)| *h)
}

/// The table's own `'static` copy of a name (for the call trace).
pub fn static_name(name: &str) -> &'static str {
    TABLE
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("?", |(n, _)| n)
}

/// Every modelled function name.
pub fn modelled() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(n, _)| *n)
}
