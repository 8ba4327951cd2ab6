/*
 * ringside_wineshim.sys: TEST CODE. It never ships in the package.
 *
 * Wine 8.0's winedevice.exe hosts kernel drivers in a user process, with an
 * ntoskrnl.exe and fltmgr.sys that miss or stub some of what the unmodified
 * ringside.sys imports. This driver is started first in the same service
 * group, so it shares ringside.sys's winedevice.exe. From an ntdll
 * DLL-load notification (after ringside.sys's imports are bound, before
 * its DriverEntry runs) it rebinds the import address table entries listed
 * in REBINDS to the implementations below. Nothing of ringside.sys's code
 * or data is changed, and the IOCTL path gets no layout compensation.
 *
 * The gaps it fills (xtask/src/wine.rs prints the same list):
 *   missing     ExAllocatePool2, IoCsqInitializeEx, IoCsqInsertIrpEx,
 *               KeQuerySystemTimePrecise, CmRegisterCallbackEx
 *   stubs       Ex*RundownProtection, IoCsqRemoveNextIrp, SeTokenIsAdmin,
 *               CmUnRegisterCallback (STATUS_NOT_IMPLEMENTED): the shim
 *               accepts the registration and its removal; Wine's
 *               configuration manager never calls registry callbacks
 *   behaviour   KeInsertQueueDpc never runs the DPC; KeCancelTimer waits
 *               for the timer's own DPC (deadlock when the DPC cancels it):
 *               the DPC and timer calls run on one shim "DPC thread"
 *   FltMgr      FltRegisterFilter returns a dummy and never unloads the
 *               filter: the shim keeps the registration and unloads through
 *               its FilterUnloadCallback, as FltMgr does (`sc stop`)
 *   I/O manager CREATE carries no security context (the shim supplies one
 *               whose token its SeTokenIsAdmin admits: the access check is
 *               therefore not exercised); CLEANUP is never sent (the
 *               shim sends it before CLOSE, as the I/O manager does);
 *               IoDeleteDevice with a handle open frees the device and the
 *               unload frees the image at once (the shim holds both until
 *               the last CLOSE, as Windows does)
 * Not filled, because they are never reached under Wine (process, file,
 * registry, object and thread-creation callbacks never fire; Wine's
 * PsSetCreateThreadNotifyRoutine and PsRemoveCreateThreadNotifyRoutine are
 * stubs that return success): PsLookupThreadByThreadId,
 * ObOpenObjectByPointer, ZwQueryInformationThread, ObfDereferenceObject,
 * CmCallbackGetKeyObjectIDEx, CmCallbackReleaseKeyObjectIDEx, SeQueryInformationToken,
 * SeQueryAuthenticationIdToken, Ps*PrimaryToken, PsGetProcessExitStatus,
 * FltGetFileNameInformation and its siblings, RtlWalkFrameChain (a
 * __wine_stub that raises), PsGetThreadId, PsGetThreadProcessId.
 * Not needed: ObRegisterCallbacks is a FIXME stub that returns success
 * with a dummy handle and never calls the routines, ObUnRegisterCallbacks
 * a FIXME stub; PsProcessType and PsThreadType are exported, so the
 * driver loads with its object callbacks "registered" and unregisters
 * them at unload. (Had the registration failed, the driver would have
 * loaded without process access events: that path is the kernel model's.)
 *
 * Built with x86_64-w64-mingw32-gcc against mingw-w64's DDK headers.
 */
#include <ntifs.h>
#include <csq.h>
#include <ntimage.h>

/* --- declarations the DDK headers do not carry ------------------------- */

typedef struct {
    ULONG Flags;
    const UNICODE_STRING *FullDllName;
    const UNICODE_STRING *BaseDllName;
    void *DllBase;
    ULONG SizeOfImage;
} SHIM_DLL_NOTIFICATION_DATA;

typedef void (NTAPI *SHIM_DLL_NOTIFICATION)(ULONG, SHIM_DLL_NOTIFICATION_DATA *, void *);
NTSYSAPI NTSTATUS NTAPI LdrRegisterDllNotification(ULONG, SHIM_DLL_NOTIFICATION, void *, void **);
NTSYSAPI NTSTATUS NTAPI NtProtectVirtualMemory(HANDLE, void **, SIZE_T *, ULONG, ULONG *);
#define SHIM_DLL_LOADED 1

/* FLT_REGISTRATION's head, from Microsoft's fltkernel.h reference page. */
typedef NTSTATUS (NTAPI *SHIM_FILTER_UNLOAD)(ULONG flags);
typedef struct {
    USHORT Size;
    USHORT Version;
    ULONG Flags;
    const void *ContextRegistration;
    const void *OperationRegistration;
    SHIM_FILTER_UNLOAD FilterUnloadCallback;
} SHIM_FLT_REGISTRATION_HEAD;
#define FLTFL_FILTER_UNLOAD_MANDATORY 0x00000001

extern IMAGE_DOS_HEADER __ImageBase;

/* --- the DPC thread: DPCs and timers ------------------------------------ */

#define SLOTS 8

struct dpc_slot { PKDPC dpc; PVOID arg1, arg2; BOOLEAN queued; };
struct timer_slot { PKTIMER timer; PKDPC dpc; LONGLONG due; LONG period; BOOLEAN set; };

static KSPIN_LOCK lock;
static KEVENT wake;
static struct dpc_slot dpcs[SLOTS];
static struct timer_slot timers[SLOTS];
static volatile LONG dpc_running;
static HANDLE dpc_thread_id;

static LONGLONG now(void)
{
    LARGE_INTEGER t;
    KeQuerySystemTime(&t);
    return t.QuadPart;
}

static void NTAPI dpc_thread(PVOID unused)
{
    (void)unused;
    dpc_thread_id = PsGetCurrentThreadId();
    for (;;) {
        KIRQL irql;
        LONGLONG next = now() + 10 * 1000 * 100; /* 100 ms at most */
        PKDPC run = NULL;
        PVOID a1 = NULL, a2 = NULL;
        KeAcquireSpinLock(&lock, &irql);
        for (int i = 0; i < SLOTS && !run; i++) {
            if (dpcs[i].dpc && dpcs[i].queued) {
                dpcs[i].queued = FALSE;
                run = dpcs[i].dpc;
                a1 = dpcs[i].arg1;
                a2 = dpcs[i].arg2;
            }
        }
        for (int i = 0; i < SLOTS && !run; i++) {
            struct timer_slot *t = &timers[i];
            if (!t->timer || !t->set) continue;
            if (t->due <= now()) {
                if (t->period) t->due = now() + (LONGLONG)t->period * 10000;
                else t->set = FALSE;
                run = t->dpc;
            } else if (t->due < next) {
                next = t->due;
            }
        }
        if (run) InterlockedIncrement(&dpc_running);
        KeReleaseSpinLock(&lock, irql);
        if (run) {
            run->DeferredRoutine(run, run->DeferredContext, a1, a2);
            InterlockedDecrement(&dpc_running);
            continue;
        }
        LARGE_INTEGER timeout;
        timeout.QuadPart = next - now();
        if (timeout.QuadPart < 0) timeout.QuadPart = 0;
        timeout.QuadPart = -timeout.QuadPart;
        KeWaitForSingleObject(&wake, Executive, KernelMode, FALSE, &timeout);
    }
}

static BOOLEAN NTAPI shim_KeInsertQueueDpc(PKDPC dpc, PVOID a1, PVOID a2)
{
    KIRQL irql;
    BOOLEAN inserted = FALSE;
    KeAcquireSpinLock(&lock, &irql);
    for (int i = 0; i < SLOTS; i++) {
        if (dpcs[i].dpc == dpc || !dpcs[i].dpc) {
            dpcs[i].dpc = dpc;
            if (!dpcs[i].queued) {
                dpcs[i].queued = TRUE;
                dpcs[i].arg1 = a1;
                dpcs[i].arg2 = a2;
                inserted = TRUE;
            }
            break;
        }
    }
    KeReleaseSpinLock(&lock, irql);
    KeSetEvent(&wake, 0, FALSE);
    return inserted;
}

static void NTAPI shim_KeFlushQueuedDpcs(void)
{
    if (PsGetCurrentThreadId() == dpc_thread_id) return;
    for (;;) {
        BOOLEAN pending = FALSE;
        KIRQL irql;
        KeAcquireSpinLock(&lock, &irql);
        for (int i = 0; i < SLOTS; i++) pending |= dpcs[i].dpc && dpcs[i].queued;
        KeReleaseSpinLock(&lock, irql);
        if (!pending && !dpc_running) return;
        LARGE_INTEGER ms = { .QuadPart = -10000 };
        KeDelayExecutionThread(KernelMode, FALSE, &ms);
    }
}

static struct timer_slot *timer_slot(PKTIMER timer)
{
    for (int i = 0; i < SLOTS; i++)
        if (timers[i].timer == timer) return &timers[i];
    for (int i = 0; i < SLOTS; i++)
        if (!timers[i].timer) { timers[i].timer = timer; return &timers[i]; }
    return NULL;
}

static void NTAPI shim_KeInitializeTimerEx(PKTIMER timer, TIMER_TYPE type)
{
    KIRQL irql;
    (void)type;
    KeAcquireSpinLock(&lock, &irql);
    struct timer_slot *t = timer_slot(timer);
    if (t) t->set = FALSE;
    KeReleaseSpinLock(&lock, irql);
}

static BOOLEAN NTAPI shim_KeSetTimerEx(PKTIMER timer, LARGE_INTEGER due, LONG period, PKDPC dpc)
{
    KIRQL irql;
    BOOLEAN was = FALSE;
    KeAcquireSpinLock(&lock, &irql);
    struct timer_slot *t = timer_slot(timer);
    if (t) {
        was = t->set;
        t->due = due.QuadPart < 0 ? now() - due.QuadPart : due.QuadPart;
        t->period = period;
        t->dpc = dpc;
        t->set = TRUE;
    }
    KeReleaseSpinLock(&lock, irql);
    KeSetEvent(&wake, 0, FALSE);
    return was;
}

/* Windows does not wait for a running DPC here; Wine 8.0 does. */
static BOOLEAN NTAPI shim_KeCancelTimer(PKTIMER timer)
{
    KIRQL irql;
    BOOLEAN was = FALSE;
    KeAcquireSpinLock(&lock, &irql);
    struct timer_slot *t = timer_slot(timer);
    if (t) { was = t->set; t->set = FALSE; }
    KeReleaseSpinLock(&lock, irql);
    return was;
}

/* --- pool, time, rundown ------------------------------------------------ */

#define SHIM_POOL_FLAG_UNINITIALIZED 0x2

static PVOID NTAPI shim_ExAllocatePool2(ULONG64 flags, SIZE_T size, ULONG tag)
{
    PVOID p = ExAllocatePoolWithTag(NonPagedPool, size, tag);
    if (p && !(flags & SHIM_POOL_FLAG_UNINITIALIZED)) RtlZeroMemory(p, size);
    return p;
}

static void NTAPI shim_KeQuerySystemTimePrecise(PLARGE_INTEGER t)
{
    KeQuerySystemTime(t);
}

/* EX_RUNDOWN_REF.Count: references in units of 2, bit 0 = rundown active. */
static void NTAPI shim_ExInitializeRundownProtection(PEX_RUNDOWN_REF r)
{
    r->Count = 0;
}

static BOOLEAN NTAPI shim_ExAcquireRundownProtection(PEX_RUNDOWN_REF r)
{
    for (;;) {
        ULONG_PTR v = r->Count;
        if (v & 1) return FALSE;
        if ((ULONG_PTR)InterlockedCompareExchangePointer((PVOID *)&r->Count, (PVOID)(v + 2), (PVOID)v) == v)
            return TRUE;
    }
}

static void NTAPI shim_ExReleaseRundownProtection(PEX_RUNDOWN_REF r)
{
    InterlockedExchangeAdd64((LONG64 *)&r->Count, -2);
}

static void NTAPI shim_ExWaitForRundownProtectionRelease(PEX_RUNDOWN_REF r)
{
    InterlockedOr64((LONG64 *)&r->Count, 1);
    while (r->Count != 1) {
        LARGE_INTEGER ms = { .QuadPart = -10000 };
        KeDelayExecutionThread(KernelMode, FALSE, &ms);
    }
}

/* --- the cancel-safe queue (the documented IoCsq* contract) ------------- */

static PIO_CSQ csq_of(PIRP irp)
{
    PVOID ctx = irp->Tail.Overlay.DriverContext[3];
    if (ctx && ((PIO_CSQ_IRP_CONTEXT)ctx)->Type == IO_TYPE_CSQ_IRP_CONTEXT)
        return ((PIO_CSQ_IRP_CONTEXT)ctx)->Csq;
    return (PIO_CSQ)ctx;
}

static void forget(PIRP irp)
{
    PVOID ctx = irp->Tail.Overlay.DriverContext[3];
    if (ctx && ((PIO_CSQ_IRP_CONTEXT)ctx)->Type == IO_TYPE_CSQ_IRP_CONTEXT)
        ((PIO_CSQ_IRP_CONTEXT)ctx)->Irp = NULL;
    irp->Tail.Overlay.DriverContext[3] = NULL;
}

static void NTAPI csq_cancel(PDEVICE_OBJECT device, PIRP irp)
{
    KIRQL irql;
    (void)device;
    IoReleaseCancelSpinLock(irp->CancelIrql);
    PIO_CSQ csq = csq_of(irp);
    csq->CsqAcquireLock(csq, &irql);
    csq->CsqRemoveIrp(csq, irp);
    forget(irp);
    csq->CsqReleaseLock(csq, irql);
    csq->CsqCompleteCanceledIrp(csq, irp);
}

static NTSTATUS NTAPI shim_IoCsqInitializeEx(PIO_CSQ csq, PIO_CSQ_INSERT_IRP_EX insert,
    PIO_CSQ_REMOVE_IRP remove, PIO_CSQ_PEEK_NEXT_IRP peek, PIO_CSQ_ACQUIRE_LOCK acquire,
    PIO_CSQ_RELEASE_LOCK release, PIO_CSQ_COMPLETE_CANCELED_IRP complete)
{
    csq->Type = IO_TYPE_CSQ_EX;
    /* As Windows does: the Ex routine in the plain one's slot, told apart by Type. */
    csq->CsqInsertIrp = (PIO_CSQ_INSERT_IRP)(void *)insert;
    csq->CsqRemoveIrp = remove;
    csq->CsqPeekNextIrp = peek;
    csq->CsqAcquireLock = acquire;
    csq->CsqReleaseLock = release;
    csq->CsqCompleteCanceledIrp = complete;
    csq->ReservePointer = NULL;
    return STATUS_SUCCESS;
}

static NTSTATUS NTAPI shim_IoCsqInsertIrpEx(PIO_CSQ csq, PIRP irp, PIO_CSQ_IRP_CONTEXT context,
    PVOID insert_context)
{
    KIRQL irql;
    csq->CsqAcquireLock(csq, &irql);
    NTSTATUS status = ((PIO_CSQ_INSERT_IRP_EX)(void *)csq->CsqInsertIrp)(csq, irp, insert_context);
    if (!NT_SUCCESS(status)) {
        csq->CsqReleaseLock(csq, irql);
        return status;
    }
    if (context) {
        context->Type = IO_TYPE_CSQ_IRP_CONTEXT;
        context->Irp = irp;
        context->Csq = csq;
        irp->Tail.Overlay.DriverContext[3] = context;
    } else {
        irp->Tail.Overlay.DriverContext[3] = csq;
    }
    IoMarkIrpPending(irp);
    IoSetCancelRoutine(irp, csq_cancel);
    if (irp->Cancel && IoSetCancelRoutine(irp, NULL)) {
        /* Cancelled before the routine was set: complete it here. */
        csq->CsqRemoveIrp(csq, irp);
        forget(irp);
        csq->CsqReleaseLock(csq, irql);
        csq->CsqCompleteCanceledIrp(csq, irp);
        return STATUS_SUCCESS;
    }
    csq->CsqReleaseLock(csq, irql);
    return STATUS_SUCCESS;
}

static PIRP NTAPI shim_IoCsqRemoveNextIrp(PIO_CSQ csq, PVOID peek_context)
{
    KIRQL irql;
    csq->CsqAcquireLock(csq, &irql);
    PIRP irp = csq->CsqPeekNextIrp(csq, NULL, peek_context);
    while (irp) {
        if (IoSetCancelRoutine(irp, NULL)) {
            csq->CsqRemoveIrp(csq, irp);
            forget(irp);
            break;
        }
        /* Its cancel routine is running and will remove it. */
        irp = csq->CsqPeekNextIrp(csq, irp, peek_context);
    }
    csq->CsqReleaseLock(csq, irql);
    return irp;
}

/* --- the I/O manager's and FltMgr's part -------------------------------- */

/* The token the shim's CREATE security context carries (see the top). */
static char admin_token;

static BOOLEAN NTAPI shim_SeTokenIsAdmin(PACCESS_TOKEN token)
{
    return token == (PACCESS_TOKEN)&admin_token;
}

/* Registry callbacks: accepted and never called (Wine has no registry
 * filtering); the cookie is nonzero, as Windows' are. */
static NTSTATUS NTAPI shim_CmRegisterCallbackEx(PEX_CALLBACK_FUNCTION function, PCUNICODE_STRING altitude,
    PVOID driver, PVOID context, PLARGE_INTEGER cookie, PVOID reserved)
{
    (void)function; (void)altitude; (void)driver; (void)context; (void)reserved;
    cookie->QuadPart = 0x10000;
    return STATUS_SUCCESS;
}

static NTSTATUS NTAPI shim_CmUnRegisterCallback(LARGE_INTEGER cookie)
{
    return cookie.QuadPart == 0x10000 ? STATUS_SUCCESS : STATUS_INVALID_PARAMETER;
}

static PDRIVER_OBJECT filter_driver;
static SHIM_FILTER_UNLOAD filter_unload;
static PDRIVER_DISPATCH driver_create, driver_close;

/* Windows keeps a device whose driver called IoDeleteDevice while handles
 * are open until the last CLOSE (new opens get STATUS_DELETE_PENDING), and
 * the driver's image until then. Wine frees both at once, so a CLOSE that
 * comes later runs unloaded code. The shim counts open handles, holds the
 * deletion until the last CLOSE, and holds the unload until then. */
static volatile LONG open_files;
static PDEVICE_OBJECT volatile delete_pending;
static KEVENT all_closed;

static void NTAPI shim_IoDeleteDevice(PDEVICE_OBJECT device)
{
    if (open_files > 0) {
        KeClearEvent(&all_closed);
        InterlockedExchangePointer((PVOID volatile *)&delete_pending, device);
        if (open_files > 0) return;
        /* The last CLOSE came in between: whoever takes the device back
         * deletes it, once. */
        if (!InterlockedExchangePointer((PVOID volatile *)&delete_pending, NULL)) return;
    }
    IoDeleteDevice(device);
}

static NTSTATUS NTAPI shim_create(PDEVICE_OBJECT device, PIRP irp)
{
    PIO_STACK_LOCATION stack = IoGetCurrentIrpStackLocation(irp);
    IO_SECURITY_CONTEXT security;
    ACCESS_STATE access;
    if (delete_pending) {
        irp->IoStatus.Status = STATUS_DELETE_PENDING;
        irp->IoStatus.Information = 0;
        IoCompleteRequest(irp, IO_NO_INCREMENT);
        return STATUS_DELETE_PENDING;
    }
    if (!stack->Parameters.Create.SecurityContext) {
        RtlZeroMemory(&security, sizeof(security));
        RtlZeroMemory(&access, sizeof(access));
        access.SubjectSecurityContext.PrimaryToken = (PACCESS_TOKEN)&admin_token;
        security.AccessState = &access;
        security.DesiredAccess = FILE_GENERIC_READ | FILE_GENERIC_WRITE;
        stack->Parameters.Create.SecurityContext = &security;
    }
    /* ringside completes CREATE before it returns, so the context on this
     * stack outlives its use. */
    NTSTATUS status = driver_create(device, irp);
    if (NT_SUCCESS(status)) InterlockedIncrement(&open_files);
    return status;
}

static NTSTATUS NTAPI cleanup_done(PDEVICE_OBJECT device, PIRP irp, PVOID context)
{
    (void)device; (void)irp;
    KeSetEvent((PKEVENT)context, 0, FALSE);
    return STATUS_MORE_PROCESSING_REQUIRED;
}

static NTSTATUS NTAPI shim_close(PDEVICE_OBJECT device, PIRP irp)
{
    PIO_STACK_LOCATION stack = IoGetCurrentIrpStackLocation(irp);
    PIRP cleanup = IoAllocateIrp(device->StackSize, FALSE);
    if (cleanup) {
        KEVENT done;
        KeInitializeEvent(&done, NotificationEvent, FALSE);
        cleanup->Tail.Overlay.OriginalFileObject = stack->FileObject;
        cleanup->RequestorMode = irp->RequestorMode;
        PIO_STACK_LOCATION next = IoGetNextIrpStackLocation(cleanup);
        next->MajorFunction = IRP_MJ_CLEANUP;
        next->FileObject = stack->FileObject;
        next->DeviceObject = device;
        IoSetCompletionRoutine(cleanup, cleanup_done, &done, TRUE, TRUE, TRUE);
        IoCallDriver(device, cleanup);
        KeWaitForSingleObject(&done, Executive, KernelMode, FALSE, NULL);
        IoFreeIrp(cleanup);
    }
    NTSTATUS status = driver_close(device, irp);
    if (InterlockedDecrement(&open_files) == 0) {
        PDEVICE_OBJECT pending = InterlockedExchangePointer((PVOID volatile *)&delete_pending, NULL);
        if (pending) {
            IoDeleteDevice(pending);
            KeSetEvent(&all_closed, 0, FALSE);
        }
    }
    return status;
}

static void NTAPI shim_unload(PDRIVER_OBJECT driver)
{
    (void)driver;
    if (filter_unload) filter_unload(FLTFL_FILTER_UNLOAD_MANDATORY);
    if (delete_pending) {
        /* The image stays until the last handle is closed (at most 30 s). */
        LARGE_INTEGER timeout = { .QuadPart = -30LL * 10 * 1000 * 1000 };
        KeWaitForSingleObject(&all_closed, Executive, KernelMode, FALSE, &timeout);
    }
    /* The teardown cancelled its timer and flushed its DPCs: forget them,
     * so a reloaded driver (its KTIMER and KDPC at new addresses) finds
     * free slots however often it is restarted. */
    KIRQL irql;
    KeAcquireSpinLock(&lock, &irql);
    RtlZeroMemory(timers, sizeof(timers));
    RtlZeroMemory(dpcs, sizeof(dpcs));
    KeReleaseSpinLock(&lock, irql);
}

static NTSTATUS NTAPI shim_FltRegisterFilter(PDRIVER_OBJECT driver, const SHIM_FLT_REGISTRATION_HEAD *reg,
    PVOID *filter)
{
    filter_driver = driver;
    filter_unload = reg->FilterUnloadCallback;
    driver_create = driver->MajorFunction[IRP_MJ_CREATE];
    driver_close = driver->MajorFunction[IRP_MJ_CLOSE];
    driver->MajorFunction[IRP_MJ_CREATE] = shim_create;
    driver->MajorFunction[IRP_MJ_CLOSE] = shim_close;
    driver->DriverUnload = shim_unload;
    *filter = (PVOID)&filter_driver;
    return STATUS_SUCCESS;
}

static NTSTATUS NTAPI shim_FltStartFiltering(PVOID filter)
{
    (void)filter;
    return STATUS_SUCCESS;
}

static void NTAPI shim_FltUnregisterFilter(PVOID filter)
{
    (void)filter;
}

/* --- rebinding ---------------------------------------------------------- */

struct rebind { const char *dll; const char *name; void *to; };

static const struct rebind REBINDS[] = {
    { "ntoskrnl.exe", "ExAllocatePool2", shim_ExAllocatePool2 },
    { "ntoskrnl.exe", "KeQuerySystemTimePrecise", shim_KeQuerySystemTimePrecise },
    { "ntoskrnl.exe", "ExInitializeRundownProtection", shim_ExInitializeRundownProtection },
    { "ntoskrnl.exe", "ExAcquireRundownProtection", shim_ExAcquireRundownProtection },
    { "ntoskrnl.exe", "ExReleaseRundownProtection", shim_ExReleaseRundownProtection },
    { "ntoskrnl.exe", "ExWaitForRundownProtectionRelease", shim_ExWaitForRundownProtectionRelease },
    { "ntoskrnl.exe", "IoCsqInitializeEx", shim_IoCsqInitializeEx },
    { "ntoskrnl.exe", "IoCsqInsertIrpEx", shim_IoCsqInsertIrpEx },
    { "ntoskrnl.exe", "IoCsqRemoveNextIrp", shim_IoCsqRemoveNextIrp },
    { "ntoskrnl.exe", "KeInsertQueueDpc", shim_KeInsertQueueDpc },
    { "ntoskrnl.exe", "KeFlushQueuedDpcs", shim_KeFlushQueuedDpcs },
    { "ntoskrnl.exe", "KeInitializeTimerEx", shim_KeInitializeTimerEx },
    { "ntoskrnl.exe", "KeSetTimerEx", shim_KeSetTimerEx },
    { "ntoskrnl.exe", "KeCancelTimer", shim_KeCancelTimer },
    { "ntoskrnl.exe", "SeTokenIsAdmin", shim_SeTokenIsAdmin },
    { "ntoskrnl.exe", "IoDeleteDevice", shim_IoDeleteDevice },
    { "ntoskrnl.exe", "CmRegisterCallbackEx", shim_CmRegisterCallbackEx },
    { "ntoskrnl.exe", "CmUnRegisterCallback", shim_CmUnRegisterCallback },
    { "fltmgr.sys", "FltRegisterFilter", shim_FltRegisterFilter },
    { "fltmgr.sys", "FltStartFiltering", shim_FltStartFiltering },
    { "fltmgr.sys", "FltUnregisterFilter", shim_FltUnregisterFilter },
};

static int ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? *a + 32 : *a;
        char y = *b >= 'A' && *b <= 'Z' ? *b + 32 : *b;
        if (x != y) return 0;
    }
    return *a == *b;
}

static int is_ringside(const UNICODE_STRING *name)
{
    static const WCHAR want[] = L"ringside.sys";
    USHORT n = name->Length / sizeof(WCHAR), w = sizeof(want) / sizeof(WCHAR) - 1;
    if (n < w) return 0;
    for (USHORT i = 0; i < w; i++) {
        WCHAR c = name->Buffer[n - w + i];
        if (c >= 'A' && c <= 'Z') c += 32;
        if (c != want[i]) return 0;
    }
    return 1;
}

static void rebind_imports(char *base)
{
    IMAGE_NT_HEADERS64 *nt = (IMAGE_NT_HEADERS64 *)(base + ((IMAGE_DOS_HEADER *)base)->e_lfanew);
    IMAGE_DATA_DIRECTORY dir = nt->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_IMPORT];
    ULONG rebound = 0;
    for (IMAGE_IMPORT_DESCRIPTOR *d = (IMAGE_IMPORT_DESCRIPTOR *)(base + dir.VirtualAddress); d->Name; d++) {
        const char *dll = base + d->Name;
        ULONG64 *names = (ULONG64 *)(base + (d->OriginalFirstThunk ? d->OriginalFirstThunk : d->FirstThunk));
        ULONG64 *iat = (ULONG64 *)(base + d->FirstThunk);
        for (; *names; names++, iat++) {
            if (*names & IMAGE_ORDINAL_FLAG64) continue;
            const char *name = (const char *)((IMAGE_IMPORT_BY_NAME *)(base + *names))->Name;
            for (ULONG i = 0; i < sizeof(REBINDS) / sizeof(REBINDS[0]); i++) {
                if (!ieq(REBINDS[i].dll, dll) || !ieq(REBINDS[i].name, name)) continue;
                void *page = iat;
                SIZE_T size = sizeof(*iat);
                ULONG old;
                NtProtectVirtualMemory((HANDLE)-1, &page, &size, PAGE_READWRITE, &old);
                *iat = (ULONG64)REBINDS[i].to;
                page = iat;
                size = sizeof(*iat);
                NtProtectVirtualMemory((HANDLE)-1, &page, &size, old, &old);
                rebound++;
            }
        }
    }
    DbgPrint("ringside_wineshim: rebound %lu imports of ringside.sys\n", rebound);
}

static void NTAPI on_dll(ULONG reason, SHIM_DLL_NOTIFICATION_DATA *data, void *context)
{
    (void)context;
    if (reason == SHIM_DLL_LOADED && is_ringside(data->FullDllName))
        rebind_imports((char *)data->DllBase);
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
    static void *cookie;
    HANDLE thread;
    (void)path;
    /* Wine calls a mingw-built driver's entry point as DllMain too (on
     * every new thread); its first argument is then our own base. */
    if ((void *)driver == (void *)&__ImageBase) return TRUE;
    KeInitializeSpinLock(&lock);
    KeInitializeEvent(&wake, SynchronizationEvent, FALSE);
    KeInitializeEvent(&all_closed, NotificationEvent, TRUE);
    NTSTATUS status = PsCreateSystemThread(&thread, THREAD_ALL_ACCESS, NULL, NULL, NULL, dpc_thread, NULL);
    if (!NT_SUCCESS(status)) return status;
    ZwClose(thread);
    status = LdrRegisterDllNotification(0, on_dll, NULL, &cookie);
    if (!NT_SUCCESS(status)) return status;
    /* Never unloaded while ringside.sys may still call into it. */
    driver->DriverUnload = NULL;
    return STATUS_SUCCESS;
}
