/*
 * The ABI oracle: offsetof/sizeof of every kernel structure field that
 * ringside.sys reads or writes and that the kernel model builds, compiled
 * for x64 Windows against a header set no one here wrote.
 *
 * tests/build.rs compiles this file twice with x86_64-w64-mingw32-gcc -S:
 * against mingw-w64's DDK headers (ORACLE_MINGW) and against Wine's
 * (ORACLE_WINE), and the two structures neither declares from Microsoft's
 * documentation (ORACLE_DOCS); reads each `ringside_abi_{off,size}_NAME:
 * .quad VALUE` from the assembly, and compares the two sets. NAME is the constant the model uses
 * (tests/src/layout.rs). Nothing is run: the compiler lays the structures
 * out exactly as it would for a driver.
 *
 * mingw-w64 ships no fltkernel.h, so most FltMgr structures (FLT_*) come
 * from Wine's header alone; the table says which set each value came from.
 */
#include <stddef.h>
#if defined(ORACLE_MINGW)
/* mingw-w64: the DDK directory is on the include path, as its headers expect. */
#include <ntifs.h>
#include <csq.h>
/* What this header set declares (mingw-w64 has no fltkernel.h). */
#define HAVE_FLTKERNEL 0
#define HAVE_CSQ_LAYOUT 1
#define HAVE_RUNDOWN 1
#define HAVE_IMAGE_INFO_EX 1
#define DISPOSITION_DELETE DeleteFile
#define HAVE_DOCUMENTED 0
/* The DDK headers declare no PEB (winternl.h is a user-mode header). */
#define HAVE_PROCESS_PARAMETERS 0
#elif defined(ORACLE_WINE)
/* Wine: the order Wine's own drivers include them in (e.g. dlls/fltmgr.sys). */
#include <ntstatus.h>
#define WIN32_NO_STATUS
#include <windef.h>
#include <winternl.h>
/* ntddk.h first: it includes wdm.h, which defines _NTDDK_ and would hide
 * ntddk.h's IMAGE_INFO and PS_CREATE_NOTIFY_INFO if included before it. */
#include <ddk/ntddk.h>
#include <ddk/ntifs.h>
#include <ddk/csq.h>
#include <ddk/fltkernel.h>
/* Wine declares IO_CSQ opaque and has no EX_RUNDOWN_REF or IMAGE_INFO_EX;
 * its winternl.h names the disposition flag DoDeleteFile (same place). */
#define HAVE_FLTKERNEL 1
#define HAVE_CSQ_LAYOUT 0
#define HAVE_RUNDOWN 0
#define HAVE_IMAGE_INFO_EX 0
#define DISPOSITION_DELETE DoDeleteFile
#define HAVE_DOCUMENTED 0
/* winternl.h declares PEB and RTL_USER_PROCESS_PARAMETERS in full. */
#define HAVE_PROCESS_PARAMETERS 1
#elif defined(ORACLE_DOCS)
/* The third witness, for the two FltMgr structures neither header set
 * defines (Wine declares them opaque): Microsoft's published declarations
 * (documented.h), compiled over mingw-w64's base types. */
#include <ntifs.h>
#include "documented.h"
#define HAVE_FLTKERNEL 0
#define HAVE_CSQ_LAYOUT 0
#define HAVE_RUNDOWN 0
#define HAVE_IMAGE_INFO_EX 0
#define HAVE_DOCUMENTED 1
#define HAVE_PROCESS_PARAMETERS 0
#else
#error "define ORACLE_MINGW or ORACLE_WINE"
#endif

#define OFF(name, type, member) \
    const unsigned long long ringside_abi_off_##name = offsetof(type, member);
#define SIZE(name, type) const unsigned long long ringside_abi_size_##name = sizeof(type);

#if !HAVE_DOCUMENTED

/* ---- wdm.h: the I/O manager's objects ---- */
SIZE(DRIVER_OBJECT_SIZE, DRIVER_OBJECT)
OFF(DRIVER_DEVICE_OBJECT, DRIVER_OBJECT, DeviceObject)
OFF(DRIVER_START, DRIVER_OBJECT, DriverStart)
OFF(DRIVER_SIZE, DRIVER_OBJECT, DriverSize)
OFF(DRIVER_EXTENSION, DRIVER_OBJECT, DriverExtension)
OFF(DRIVER_NAME, DRIVER_OBJECT, DriverName)
OFF(DRIVER_UNLOAD, DRIVER_OBJECT, DriverUnload)
OFF(DRIVER_MAJOR_FUNCTION, DRIVER_OBJECT, MajorFunction)

SIZE(DEVICE_OBJECT_SIZE, DEVICE_OBJECT)
OFF(DEVICE_DRIVER_OBJECT, DEVICE_OBJECT, DriverObject)
OFF(DEVICE_NEXT, DEVICE_OBJECT, NextDevice)
OFF(DEVICE_FLAGS, DEVICE_OBJECT, Flags)
OFF(DEVICE_CHARACTERISTICS, DEVICE_OBJECT, Characteristics)
OFF(DEVICE_EXTENSION, DEVICE_OBJECT, DeviceExtension)
OFF(DEVICE_TYPE, DEVICE_OBJECT, DeviceType)
OFF(DEVICE_STACK_SIZE, DEVICE_OBJECT, StackSize)

SIZE(FILE_OBJECT_SIZE, FILE_OBJECT)
OFF(FILE_DEVICE_OBJECT, FILE_OBJECT, DeviceObject)
OFF(FILE_FS_CONTEXT, FILE_OBJECT, FsContext)
OFF(FILE_FILE_NAME, FILE_OBJECT, FileName)

SIZE(IRP_SIZE, IRP)
OFF(IRP_MDL_ADDRESS, IRP, MdlAddress)
OFF(IRP_SYSTEM_BUFFER, IRP, AssociatedIrp.SystemBuffer)
OFF(IRP_IO_STATUS, IRP, IoStatus)
OFF(IRP_REQUESTOR_MODE, IRP, RequestorMode)
OFF(IRP_PENDING_RETURNED, IRP, PendingReturned)
OFF(IRP_STACK_COUNT, IRP, StackCount)
OFF(IRP_CURRENT_LOCATION, IRP, CurrentLocation)
OFF(IRP_CANCEL, IRP, Cancel)
OFF(IRP_CANCEL_ROUTINE, IRP, CancelRoutine)
OFF(IRP_USER_BUFFER, IRP, UserBuffer)
OFF(IRP_DRIVER_CONTEXT, IRP, Tail.Overlay.DriverContext)
OFF(IRP_THREAD, IRP, Tail.Overlay.Thread)
OFF(IRP_CURRENT_STACK_LOCATION, IRP, Tail.Overlay.CurrentStackLocation)
SIZE(IO_STATUS_BLOCK_SIZE, IO_STATUS_BLOCK)
OFF(IO_STATUS_INFORMATION, IO_STATUS_BLOCK, Information)

SIZE(IO_STACK_LOCATION_SIZE, IO_STACK_LOCATION)
OFF(STACK_MAJOR, IO_STACK_LOCATION, MajorFunction)
OFF(STACK_CONTROL, IO_STACK_LOCATION, Control)
OFF(STACK_PARAMETERS, IO_STACK_LOCATION, Parameters)
OFF(STACK_CREATE_SECURITY_CONTEXT, IO_STACK_LOCATION, Parameters.Create.SecurityContext)
OFF(STACK_CREATE_OPTIONS, IO_STACK_LOCATION, Parameters.Create.Options)
OFF(STACK_READ_LENGTH, IO_STACK_LOCATION, Parameters.Read.Length)
OFF(STACK_READ_KEY, IO_STACK_LOCATION, Parameters.Read.Key)
OFF(STACK_READ_BYTE_OFFSET, IO_STACK_LOCATION, Parameters.Read.ByteOffset)
OFF(STACK_WRITE_LENGTH, IO_STACK_LOCATION, Parameters.Write.Length)
OFF(STACK_WRITE_KEY, IO_STACK_LOCATION, Parameters.Write.Key)
OFF(STACK_WRITE_BYTE_OFFSET, IO_STACK_LOCATION, Parameters.Write.ByteOffset)
OFF(STACK_SET_FILE_LENGTH, IO_STACK_LOCATION, Parameters.SetFile.Length)
OFF(STACK_SET_FILE_CLASS, IO_STACK_LOCATION, Parameters.SetFile.FileInformationClass)
OFF(STACK_SET_FILE_OBJECT, IO_STACK_LOCATION, Parameters.SetFile.FileObject)
OFF(STACK_IOCTL_OUTPUT_LENGTH, IO_STACK_LOCATION, Parameters.DeviceIoControl.OutputBufferLength)
OFF(STACK_IOCTL_INPUT_LENGTH, IO_STACK_LOCATION, Parameters.DeviceIoControl.InputBufferLength)
OFF(STACK_IOCTL_CODE, IO_STACK_LOCATION, Parameters.DeviceIoControl.IoControlCode)
OFF(STACK_IOCTL_TYPE3_INPUT, IO_STACK_LOCATION, Parameters.DeviceIoControl.Type3InputBuffer)
OFF(STACK_DEVICE_OBJECT, IO_STACK_LOCATION, DeviceObject)
OFF(STACK_FILE_OBJECT, IO_STACK_LOCATION, FileObject)

/* IRP_MJ_CREATE's security context and the access state the open check reads. */
SIZE(SECURITY_CONTEXT_SIZE, IO_SECURITY_CONTEXT)
OFF(SECURITY_CONTEXT_ACCESS_STATE, IO_SECURITY_CONTEXT, AccessState)
OFF(SECURITY_CONTEXT_DESIRED_ACCESS, IO_SECURITY_CONTEXT, DesiredAccess)
OFF(SECURITY_CONTEXT_FULL_CREATE_OPTIONS, IO_SECURITY_CONTEXT, FullCreateOptions)
OFF(ACCESS_STATE_SUBJECT_CONTEXT, ACCESS_STATE, SubjectSecurityContext)
OFF(SUBJECT_CLIENT_TOKEN, SECURITY_SUBJECT_CONTEXT, ClientToken)
OFF(SUBJECT_PRIMARY_TOKEN, SECURITY_SUBJECT_CONTEXT, PrimaryToken)

SIZE(MDL_SIZE, MDL)
OFF(MDL_FLAGS, MDL, MdlFlags)
OFF(MDL_SIZE_FIELD, MDL, Size)
OFF(MDL_MAPPED_SYSTEM_VA, MDL, MappedSystemVa)
OFF(MDL_START_VA, MDL, StartVa)
OFF(MDL_BYTE_COUNT, MDL, ByteCount)
OFF(MDL_BYTE_OFFSET, MDL, ByteOffset)

SIZE(UNICODE_STRING_SIZE, UNICODE_STRING)
OFF(US_LENGTH, UNICODE_STRING, Length)
OFF(US_MAXIMUM_LENGTH, UNICODE_STRING, MaximumLength)
OFF(US_BUFFER, UNICODE_STRING, Buffer)

/* ---- opaque objects the driver only allocates: their sizes ---- */
SIZE(KDPC_SIZE, KDPC)
OFF(KDPC_ROUTINE, KDPC, DeferredRoutine)
OFF(KDPC_CONTEXT, KDPC, DeferredContext)
SIZE(KTIMER_SIZE, KTIMER)
#if HAVE_RUNDOWN
SIZE(EX_RUNDOWN_REF_SIZE, EX_RUNDOWN_REF)
#endif
#if HAVE_CSQ_LAYOUT
SIZE(IO_CSQ_SIZE, IO_CSQ)
OFF(CSQ_INSERT, IO_CSQ, CsqInsertIrp)
OFF(CSQ_REMOVE, IO_CSQ, CsqRemoveIrp)
OFF(CSQ_PEEK, IO_CSQ, CsqPeekNextIrp)
OFF(CSQ_ACQUIRE, IO_CSQ, CsqAcquireLock)
OFF(CSQ_RELEASE, IO_CSQ, CsqReleaseLock)
OFF(CSQ_COMPLETE_CANCELED, IO_CSQ, CsqCompleteCanceledIrp)
#endif

/* ---- process and image notify routines ---- */
SIZE(CREATE_INFO_SIZE, PS_CREATE_NOTIFY_INFO)
OFF(CI_SIZE, PS_CREATE_NOTIFY_INFO, Size)
OFF(CI_FLAGS, PS_CREATE_NOTIFY_INFO, Flags)
OFF(CI_PARENT, PS_CREATE_NOTIFY_INFO, ParentProcessId)
OFF(CI_CREATING_THREAD, PS_CREATE_NOTIFY_INFO, CreatingThreadId)
OFF(CI_FILE_OBJECT, PS_CREATE_NOTIFY_INFO, FileObject)
OFF(CI_IMAGE_FILE_NAME, PS_CREATE_NOTIFY_INFO, ImageFileName)
OFF(CI_COMMAND_LINE, PS_CREATE_NOTIFY_INFO, CommandLine)
OFF(CI_CREATION_STATUS, PS_CREATE_NOTIFY_INFO, CreationStatus)
SIZE(IMAGE_INFO_SIZE, IMAGE_INFO)
OFF(II_PROPERTIES, IMAGE_INFO, Properties)
OFF(II_IMAGE_BASE, IMAGE_INFO, ImageBase)
OFF(II_IMAGE_SELECTOR, IMAGE_INFO, ImageSelector)
OFF(II_IMAGE_SIZE, IMAGE_INFO, ImageSize)
OFF(II_IMAGE_SECTION_NUMBER, IMAGE_INFO, ImageSectionNumber)
#if HAVE_IMAGE_INFO_EX
SIZE(IMAGE_INFO_EX_SIZE, IMAGE_INFO_EX)
OFF(IIX_SIZE, IMAGE_INFO_EX, Size)
OFF(IIX_IMAGE_INFO, IMAGE_INFO_EX, ImageInfo)
OFF(IIX_FILE_OBJECT, IMAGE_INFO_EX, FileObject)
#endif

/* ---- tokens (SeQueryInformationToken results) ---- */
SIZE(SID_AND_ATTRIBUTES_SIZE, SID_AND_ATTRIBUTES)
OFF(SAA_SID, SID_AND_ATTRIBUTES, Sid)
OFF(SAA_ATTRIBUTES, SID_AND_ATTRIBUTES, Attributes)
OFF(TOKEN_USER_USER, TOKEN_USER, User)
OFF(TOKEN_LABEL_LABEL, TOKEN_MANDATORY_LABEL, Label)
SIZE(LUID_SIZE, LUID)
OFF(LUID_LOW_PART, LUID, LowPart)
OFF(LUID_HIGH_PART, LUID, HighPart)

/* ---- set-information buffers (ntifs.h) ---- */
OFF(RENAME_REPLACE_IF_EXISTS, FILE_RENAME_INFORMATION, ReplaceIfExists)
OFF(RENAME_ROOT_DIRECTORY, FILE_RENAME_INFORMATION, RootDirectory)
OFF(RENAME_FILE_NAME_LENGTH, FILE_RENAME_INFORMATION, FileNameLength)
OFF(RENAME_FILE_NAME, FILE_RENAME_INFORMATION, FileName)
OFF(DISPOSITION_DELETE_FILE, FILE_DISPOSITION_INFORMATION, DISPOSITION_DELETE)
SIZE(DISPOSITION_SIZE, FILE_DISPOSITION_INFORMATION)
/* The major function a server's CreateNamedPipe sends (filter.rs registers
 * a post-operation callback for it); a value, through the size table. */
const unsigned long long ringside_abi_size_IRP_MJ_CREATE_NAMED_PIPE = IRP_MJ_CREATE_NAMED_PIPE;

/* ---- fltkernel.h (Wine only: mingw-w64 has no fltkernel.h) ---- */
#if HAVE_FLTKERNEL
SIZE(FLT_REGISTRATION_SIZE, FLT_REGISTRATION)
OFF(REG_SIZE, FLT_REGISTRATION, Size)
OFF(REG_VERSION, FLT_REGISTRATION, Version)
OFF(REG_FLAGS, FLT_REGISTRATION, Flags)
OFF(REG_CONTEXTS, FLT_REGISTRATION, ContextRegistration)
OFF(REG_OPERATIONS, FLT_REGISTRATION, OperationRegistration)
OFF(REG_UNLOAD, FLT_REGISTRATION, FilterUnloadCallback)
OFF(REG_INSTANCE_SETUP, FLT_REGISTRATION, InstanceSetupCallback)
OFF(REG_INSTANCE_TEARDOWN_START, FLT_REGISTRATION, InstanceTeardownStartCallback)
OFF(REG_INSTANCE_TEARDOWN_COMPLETE, FLT_REGISTRATION, InstanceTeardownCompleteCallback)
SIZE(OPERATION_SIZE, FLT_OPERATION_REGISTRATION)
OFF(OP_MAJOR, FLT_OPERATION_REGISTRATION, MajorFunction)
OFF(OP_FLAGS, FLT_OPERATION_REGISTRATION, Flags)
OFF(OP_PRE, FLT_OPERATION_REGISTRATION, PreOperation)
OFF(OP_POST, FLT_OPERATION_REGISTRATION, PostOperation)
/* FLT_FILESYSTEM_TYPE as the InstanceSetupCallback gets it: the named-pipe
 * file system is attached to, the mailslot one declined (filter.rs). */
const unsigned long long ringside_abi_size_FLT_FSTYPE_NPFS = FLT_FSTYPE_NPFS;
const unsigned long long ringside_abi_size_FLT_FSTYPE_MSFS = FLT_FSTYPE_MSFS;

SIZE(CALLBACK_DATA_SIZE, FLT_CALLBACK_DATA)
OFF(CD_FLAGS, FLT_CALLBACK_DATA, Flags)
OFF(CD_THREAD, FLT_CALLBACK_DATA, Thread)
OFF(CD_IOPB, FLT_CALLBACK_DATA, Iopb)
OFF(CD_IO_STATUS, FLT_CALLBACK_DATA, IoStatus)
OFF(CD_REQUESTOR_MODE, FLT_CALLBACK_DATA, RequestorMode)
SIZE(IOPB_SIZE, FLT_IO_PARAMETER_BLOCK)
OFF(IOPB_IRP_FLAGS, FLT_IO_PARAMETER_BLOCK, IrpFlags)
OFF(IOPB_MAJOR, FLT_IO_PARAMETER_BLOCK, MajorFunction)
OFF(IOPB_TARGET_FILE_OBJECT, FLT_IO_PARAMETER_BLOCK, TargetFileObject)
OFF(IOPB_TARGET_INSTANCE, FLT_IO_PARAMETER_BLOCK, TargetInstance)
OFF(IOPB_PARAMETERS, FLT_IO_PARAMETER_BLOCK, Parameters)
SIZE(FLT_PARAMETERS_SIZE, FLT_PARAMETERS)
OFF(FP_CREATE_SECURITY_CONTEXT, FLT_PARAMETERS, Create.SecurityContext)
OFF(FP_CREATE_OPTIONS, FLT_PARAMETERS, Create.Options)
OFF(FP_WRITE_LENGTH, FLT_PARAMETERS, Write.Length)
OFF(FP_WRITE_KEY, FLT_PARAMETERS, Write.Key)
OFF(FP_WRITE_BYTE_OFFSET, FLT_PARAMETERS, Write.ByteOffset)
OFF(FP_WRITE_BUFFER, FLT_PARAMETERS, Write.WriteBuffer)
OFF(FP_SET_INFO_LENGTH, FLT_PARAMETERS, SetFileInformation.Length)
OFF(FP_SET_INFO_CLASS, FLT_PARAMETERS, SetFileInformation.FileInformationClass)
OFF(FP_SET_INFO_PARENT_OF_TARGET, FLT_PARAMETERS, SetFileInformation.ParentOfTarget)
OFF(FP_SET_INFO_DELETE_HANDLE, FLT_PARAMETERS, SetFileInformation.DeleteHandle)
OFF(FP_SET_INFO_BUFFER, FLT_PARAMETERS, SetFileInformation.InfoBuffer)

#endif
#endif /* !HAVE_DOCUMENTED */

/* ---- wdm.h: the registry callback's RegNtPostSetValueKey argument
 * (driver/src/kernel/registry.rs). Wine's wdm.h declares neither
 * structure; mingw-w64's does, and Microsoft's reference pages
 * (documented.h) are the second witness. ---- */
#if defined(ORACLE_MINGW)
#define REG_POST_INFO REG_POST_OPERATION_INFORMATION
#define REG_SET_VALUE_INFO REG_SET_VALUE_KEY_INFORMATION
#define REG_DELETE_KEY_INFO REG_DELETE_KEY_INFORMATION
#define REG_DELETE_VALUE_INFO REG_DELETE_VALUE_KEY_INFORMATION
#define REG_RENAME_KEY_INFO REG_RENAME_KEY_INFORMATION
#define REG_CREATE_KEY_INFO REG_CREATE_KEY_INFORMATION_V1
#elif defined(ORACLE_DOCS)
#define REG_POST_INFO RINGSIDE_REG_POST_OPERATION_INFORMATION
#define REG_SET_VALUE_INFO RINGSIDE_REG_SET_VALUE_KEY_INFORMATION
#define REG_DELETE_KEY_INFO RINGSIDE_REG_DELETE_KEY_INFORMATION
#define REG_DELETE_VALUE_INFO RINGSIDE_REG_DELETE_VALUE_KEY_INFORMATION
#define REG_RENAME_KEY_INFO RINGSIDE_REG_RENAME_KEY_INFORMATION
#define REG_CREATE_KEY_INFO RINGSIDE_REG_CREATE_KEY_INFORMATION_V1
#endif
#ifdef REG_POST_INFO
SIZE(REG_POST_INFO_SIZE, REG_POST_INFO)
OFF(RPO_OBJECT, REG_POST_INFO, Object)
OFF(RPO_STATUS, REG_POST_INFO, Status)
OFF(RPO_PRE_INFORMATION, REG_POST_INFO, PreInformation)
OFF(RPO_RETURN_STATUS, REG_POST_INFO, ReturnStatus)
OFF(RPO_CALL_CONTEXT, REG_POST_INFO, CallContext)
SIZE(REG_SET_VALUE_INFO_SIZE, REG_SET_VALUE_INFO)
OFF(RSV_OBJECT, REG_SET_VALUE_INFO, Object)
OFF(RSV_VALUE_NAME, REG_SET_VALUE_INFO, ValueName)
OFF(RSV_TYPE, REG_SET_VALUE_INFO, Type)
OFF(RSV_DATA, REG_SET_VALUE_INFO, Data)
OFF(RSV_DATA_SIZE, REG_SET_VALUE_INFO, DataSize)
/* Key creation, key and value deletion, key rename: the pre structures
 * (the post-notification's PreInformation; the delete and rename
 * pre-notifications, whose CallContext the driver writes). */
SIZE(REG_DELETE_KEY_INFO_SIZE, REG_DELETE_KEY_INFO)
OFF(RDK_OBJECT, REG_DELETE_KEY_INFO, Object)
OFF(RDK_CALL_CONTEXT, REG_DELETE_KEY_INFO, CallContext)
SIZE(REG_DELETE_VALUE_INFO_SIZE, REG_DELETE_VALUE_INFO)
OFF(RDV_OBJECT, REG_DELETE_VALUE_INFO, Object)
OFF(RDV_VALUE_NAME, REG_DELETE_VALUE_INFO, ValueName)
OFF(RDV_CALL_CONTEXT, REG_DELETE_VALUE_INFO, CallContext)
SIZE(REG_RENAME_KEY_INFO_SIZE, REG_RENAME_KEY_INFO)
OFF(RRK_OBJECT, REG_RENAME_KEY_INFO, Object)
OFF(RRK_NEW_NAME, REG_RENAME_KEY_INFO, NewName)
OFF(RRK_CALL_CONTEXT, REG_RENAME_KEY_INFO, CallContext)
SIZE(REG_CREATE_KEY_INFO_SIZE, REG_CREATE_KEY_INFO)
OFF(RCK_COMPLETE_NAME, REG_CREATE_KEY_INFO, CompleteName)
OFF(RCK_CALL_CONTEXT, REG_CREATE_KEY_INFO, CallContext)
#endif

/* ---- wdm.h: the object manager's handle callbacks
 * (driver/src/kernel/access.rs, ringside_driver::wdk::ob): the
 * registration the driver builds and the pre-/post-operation information
 * the kernel hands it. Both header sets declare all four structures. ---- */
#if defined(ORACLE_MINGW) || defined(ORACLE_WINE)
SIZE(OB_CBREG_SIZE, OB_CALLBACK_REGISTRATION)
OFF(OB_CBREG_VERSION, OB_CALLBACK_REGISTRATION, Version)
OFF(OB_CBREG_COUNT, OB_CALLBACK_REGISTRATION, OperationRegistrationCount)
OFF(OB_CBREG_ALTITUDE, OB_CALLBACK_REGISTRATION, Altitude)
OFF(OB_CBREG_CONTEXT, OB_CALLBACK_REGISTRATION, RegistrationContext)
OFF(OB_CBREG_OPERATIONS, OB_CALLBACK_REGISTRATION, OperationRegistration)
SIZE(OB_OPREG_SIZE, OB_OPERATION_REGISTRATION)
OFF(OB_OPREG_OBJECT_TYPE, OB_OPERATION_REGISTRATION, ObjectType)
OFF(OB_OPREG_OPERATIONS, OB_OPERATION_REGISTRATION, Operations)
OFF(OB_OPREG_PRE, OB_OPERATION_REGISTRATION, PreOperation)
OFF(OB_OPREG_POST, OB_OPERATION_REGISTRATION, PostOperation)
SIZE(OB_PRE_INFO_SIZE, OB_PRE_OPERATION_INFORMATION)
OFF(OB_PRE_OPERATION, OB_PRE_OPERATION_INFORMATION, Operation)
OFF(OB_PRE_FLAGS, OB_PRE_OPERATION_INFORMATION, Flags)
OFF(OB_PRE_OBJECT, OB_PRE_OPERATION_INFORMATION, Object)
OFF(OB_PRE_OBJECT_TYPE, OB_PRE_OPERATION_INFORMATION, ObjectType)
OFF(OB_PRE_CALL_CONTEXT, OB_PRE_OPERATION_INFORMATION, CallContext)
OFF(OB_PRE_PARAMETERS, OB_PRE_OPERATION_INFORMATION, Parameters)
SIZE(OB_PRE_PARAMETERS_SIZE, OB_PRE_OPERATION_PARAMETERS)
OFF(OB_PRE_CREATE_DESIRED, OB_PRE_CREATE_HANDLE_INFORMATION, DesiredAccess)
OFF(OB_PRE_CREATE_ORIGINAL_DESIRED, OB_PRE_CREATE_HANDLE_INFORMATION, OriginalDesiredAccess)
OFF(OB_PRE_DUP_DESIRED, OB_PRE_DUPLICATE_HANDLE_INFORMATION, DesiredAccess)
OFF(OB_PRE_DUP_ORIGINAL_DESIRED, OB_PRE_DUPLICATE_HANDLE_INFORMATION, OriginalDesiredAccess)
OFF(OB_PRE_DUP_SOURCE_PROCESS, OB_PRE_DUPLICATE_HANDLE_INFORMATION, SourceProcess)
OFF(OB_PRE_DUP_TARGET_PROCESS, OB_PRE_DUPLICATE_HANDLE_INFORMATION, TargetProcess)
SIZE(OB_POST_INFO_SIZE, OB_POST_OPERATION_INFORMATION)
OFF(OB_POST_OPERATION, OB_POST_OPERATION_INFORMATION, Operation)
OFF(OB_POST_FLAGS, OB_POST_OPERATION_INFORMATION, Flags)
OFF(OB_POST_OBJECT, OB_POST_OPERATION_INFORMATION, Object)
OFF(OB_POST_OBJECT_TYPE, OB_POST_OPERATION_INFORMATION, ObjectType)
OFF(OB_POST_CALL_CONTEXT, OB_POST_OPERATION_INFORMATION, CallContext)
OFF(OB_POST_RETURN_STATUS, OB_POST_OPERATION_INFORMATION, ReturnStatus)
OFF(OB_POST_PARAMETERS, OB_POST_OPERATION_INFORMATION, Parameters)
SIZE(OB_POST_PARAMETERS_SIZE, OB_POST_OPERATION_PARAMETERS)
OFF(OB_POST_CREATE_GRANTED, OB_POST_CREATE_HANDLE_INFORMATION, GrantedAccess)
OFF(OB_POST_DUP_GRANTED, OB_POST_DUPLICATE_HANDLE_INFORMATION, GrantedAccess)
#endif

/* ---- ntstatus.h: what an InstanceSetupCallback returns to decline a
 * volume (filter.rs, the mailslot file system). mingw-w64's ntstatus.h has
 * it; Wine's does not. ---- */
#if defined(ORACLE_MINGW) && defined(STATUS_FLT_DO_NOT_ATTACH)
const unsigned long long ringside_abi_size_STATUS_FLT_DO_NOT_ATTACH =
    (unsigned int)STATUS_FLT_DO_NOT_ATTACH;
#endif

/* ---- ntddk.h's THREADINFOCLASS: the class the thread-creation routine
 * queries with ZwQueryInformationThread (driver/src/kernel/thread.rs), and
 * the PVOID that class returns. mingw-w64's DDK does not declare the
 * enumeration; Wine's winternl.h does, and Microsoft's ntddk.h order
 * (documented.h) is the second witness. The enumerator's value travels
 * through the size table, which carries plain numbers. ---- */
#if defined(ORACLE_WINE)
#define WIN32_START_ADDRESS_CLASS ThreadQuerySetWin32StartAddress
#elif defined(ORACLE_DOCS)
#define WIN32_START_ADDRESS_CLASS RingsideThreadQuerySetWin32StartAddress
#endif
#ifdef WIN32_START_ADDRESS_CLASS
const unsigned long long ringside_abi_size_THREAD_QUERY_SET_WIN32_START_ADDRESS =
    WIN32_START_ADDRESS_CLASS;
#endif
SIZE(THREAD_START_ADDRESS_SIZE, PVOID)

/* ---- winternl.h, user mode: where the agent (never the driver) reads a
 * new process's current directory, PEB.ProcessParameters->
 * CurrentDirectory.DosPath (agent/src/enrich/process_params.rs). Microsoft
 * documents the PEB's ProcessParameters (documented.h); the parameters
 * block past CommandLine only Wine's header names. ---- */
#if HAVE_PROCESS_PARAMETERS
OFF(PEB_PROCESS_PARAMETERS, PEB, ProcessParameters)
OFF(PARAMS_FLAGS, RTL_USER_PROCESS_PARAMETERS, Flags)
OFF(PARAMS_CURRENT_DIRECTORY, RTL_USER_PROCESS_PARAMETERS, CurrentDirectory)
OFF(CURDIR_DOS_PATH, CURDIR, DosPath)
#endif
#if HAVE_DOCUMENTED
OFF(PEB_PROCESS_PARAMETERS, RINGSIDE_PEB, ProcessParameters)
#endif

/* ---- as Microsoft documents them (documented.h) ---- */
#if HAVE_DOCUMENTED
const unsigned long long ringside_abi_size_FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS =
    RINGSIDE_FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS;
SIZE(RELATED_SIZE, FLT_RELATED_OBJECTS)
OFF(RO_SIZE, FLT_RELATED_OBJECTS, Size)
OFF(RO_FILTER, FLT_RELATED_OBJECTS, Filter)
OFF(RO_VOLUME, FLT_RELATED_OBJECTS, Volume)
OFF(RO_INSTANCE, FLT_RELATED_OBJECTS, Instance)
OFF(RO_FILE_OBJECT, FLT_RELATED_OBJECTS, FileObject)

SIZE(NAME_INFO_SIZE, FLT_FILE_NAME_INFORMATION)
OFF(NI_SIZE, FLT_FILE_NAME_INFORMATION, Size)
OFF(NI_NAMES_PARSED, FLT_FILE_NAME_INFORMATION, NamesParsed)
OFF(NI_FORMAT, FLT_FILE_NAME_INFORMATION, Format)
OFF(NI_NAME, FLT_FILE_NAME_INFORMATION, Name)
OFF(NI_VOLUME, FLT_FILE_NAME_INFORMATION, Volume)

/* ntifs.h's RS1 set-information buffers (the Ex classes). */
OFF(RENAME_EX_FLAGS, RINGSIDE_FILE_RENAME_INFORMATION_RS1, Flags)
OFF(RENAME_EX_ROOT_DIRECTORY, RINGSIDE_FILE_RENAME_INFORMATION_RS1, RootDirectory)
OFF(RENAME_EX_FILE_NAME_LENGTH, RINGSIDE_FILE_RENAME_INFORMATION_RS1, FileNameLength)
OFF(RENAME_EX_FILE_NAME, RINGSIDE_FILE_RENAME_INFORMATION_RS1, FileName)
OFF(DISPOSITION_EX_FLAGS, RINGSIDE_FILE_DISPOSITION_INFORMATION_EX, Flags)
SIZE(DISPOSITION_EX_SIZE, RINGSIDE_FILE_DISPOSITION_INFORMATION_EX)
#endif
