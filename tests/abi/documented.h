/*
 * Structures that neither Debian header set defines, transcribed member
 * for member from the "Syntax" sections of Microsoft's reference pages:
 * the FltMgr structures Wine's fltkernel.h declares opaque (mingw-w64 has
 * no fltkernel.h: ns-fltkernel-_flt_related_objects,
 * ns-fltkernel-_flt_file_name_information), and the Windows 10 RS1 forms
 * of the set-information buffers (ns-ntifs-_file_rename_information with
 * its Flags union, used by FileRenameInformationEx;
 * ns-ntifs-_file_disposition_information_ex). Compiled over mingw-w64's base
 * types, so the compiler, not windows-sys, lays them out.
 */
typedef USHORT FLT_FILE_NAME_PARSED_FLAGS;
typedef ULONG FLT_FILE_NAME_OPTIONS;
/* Opaque object pointers, as fltkernel.h and wdm.h declare them. */
typedef struct _FLT_FILTER *PFLT_FILTER;
typedef struct _FLT_VOLUME *PFLT_VOLUME;
typedef struct _FLT_INSTANCE *PFLT_INSTANCE;
typedef struct _KTRANSACTION *PKTRANSACTION;

struct _FLT_RELATED_OBJECTS {
    const USHORT Size;
    const USHORT TransactionContext;
    const PFLT_FILTER Filter;
    const PFLT_VOLUME Volume;
    const PFLT_INSTANCE Instance;
    const PFILE_OBJECT FileObject;
    const PKTRANSACTION Transaction;
};
typedef struct _FLT_RELATED_OBJECTS FLT_RELATED_OBJECTS;

typedef struct _FLT_FILE_NAME_INFORMATION {
    USHORT Size;
    FLT_FILE_NAME_PARSED_FLAGS NamesParsed;
    FLT_FILE_NAME_OPTIONS Format;
    UNICODE_STRING Name;
    UNICODE_STRING Volume;
    UNICODE_STRING Share;
    UNICODE_STRING Extension;
    UNICODE_STRING Stream;
    UNICODE_STRING FinalComponent;
    UNICODE_STRING ParentDir;
} FLT_FILE_NAME_INFORMATION;

/* FILE_RENAME_INFORMATION as ntifs.h declares it for _WIN32_WINNT_WIN10_RS1
 * and later (one layout for FileRenameInformation and ...Ex); renamed here
 * so it does not collide with mingw-w64's older declaration. */
typedef struct _RINGSIDE_FILE_RENAME_INFORMATION_RS1 {
    union {
        BOOLEAN ReplaceIfExists;
        ULONG Flags;
    } DUMMYUNIONNAME;
    HANDLE RootDirectory;
    ULONG FileNameLength;
    WCHAR FileName[1];
} RINGSIDE_FILE_RENAME_INFORMATION_RS1;

typedef struct _RINGSIDE_FILE_DISPOSITION_INFORMATION_EX {
    ULONG Flags;
} RINGSIDE_FILE_DISPOSITION_INFORMATION_EX;

/* The PEB as winternl.h's reference page (ns-winternl-peb) declares it (BYTE
 * spelled UCHAR, which the DDK headers define), up to ProcessParameters:
 * the agent reads that pointer in another process.
 * Named RINGSIDE_PEB: mingw-w64's winternl.h, if ever included, has a PEB. */
typedef struct _RINGSIDE_PEB {
    UCHAR Reserved1[2];
    UCHAR BeingDebugged;
    UCHAR Reserved2[1];
    PVOID Reserved3[2];
    PVOID Ldr;
    PVOID ProcessParameters;
} RINGSIDE_PEB;

/* The registry callback's set-value arguments as wdm.h's reference pages
 * declare them (ns-wdm-_reg_post_operation_information,
 * ns-wdm-_reg_set_value_key_information); Wine's wdm.h has neither. */
typedef struct _RINGSIDE_REG_POST_OPERATION_INFORMATION {
    PVOID Object;
    NTSTATUS Status;
    PVOID PreInformation;
    NTSTATUS ReturnStatus;
    PVOID CallContext;
    PVOID ObjectContext;
    PVOID Reserved;
} RINGSIDE_REG_POST_OPERATION_INFORMATION;

typedef struct _RINGSIDE_REG_SET_VALUE_KEY_INFORMATION {
    PVOID Object;
    PUNICODE_STRING ValueName;
    ULONG TitleIndex;
    ULONG Type;
    PVOID Data;
    ULONG DataSize;
    PVOID CallContext;
    PVOID ObjectContext;
    PVOID Reserved;
} RINGSIDE_REG_SET_VALUE_KEY_INFORMATION;

/* Key deletion, value deletion, key rename and key creation, as their
 * reference pages declare them (ns-wdm-_reg_delete_key_information,
 * ns-wdm-_reg_delete_value_key_information,
 * ns-wdm-_reg_rename_key_information,
 * ns-wdm-_reg_create_key_information_v1). */
typedef struct _RINGSIDE_REG_DELETE_KEY_INFORMATION {
    PVOID Object;
    PVOID CallContext;
    PVOID ObjectContext;
    PVOID Reserved;
} RINGSIDE_REG_DELETE_KEY_INFORMATION;

typedef struct _RINGSIDE_REG_DELETE_VALUE_KEY_INFORMATION {
    PVOID Object;
    PUNICODE_STRING ValueName;
    PVOID CallContext;
    PVOID ObjectContext;
    PVOID Reserved;
} RINGSIDE_REG_DELETE_VALUE_KEY_INFORMATION;

typedef struct _RINGSIDE_REG_RENAME_KEY_INFORMATION {
    PVOID Object;
    PUNICODE_STRING NewName;
    PVOID CallContext;
    PVOID ObjectContext;
    PVOID Reserved;
} RINGSIDE_REG_RENAME_KEY_INFORMATION;

typedef struct _RINGSIDE_REG_CREATE_KEY_INFORMATION_V1 {
    PUNICODE_STRING CompleteName;
    PVOID RootObject;
    PVOID ObjectType;
    ULONG Options;
    PUNICODE_STRING Class;
    PVOID SecurityDescriptor;
    PVOID SecurityQualityOfService;
    ACCESS_MASK DesiredAccess;
    ACCESS_MASK GrantedAccess;
    PULONG Disposition;
    PVOID *ResultObject;
    PVOID CallContext;
    PVOID RootObjectContext;
    PVOID Transaction;
    ULONG_PTR Version;
    PUNICODE_STRING RemainingName;
    ULONG Wow64Flags;
    ULONG Attributes;
    KPROCESSOR_MODE CheckAccessMode;
} RINGSIDE_REG_CREATE_KEY_INFORMATION_V1;

/* The first members of ntddk.h's THREADINFOCLASS, in Microsoft's order, up
 * to the one the thread-creation routine queries
 * (driver/src/kernel/thread.rs); mingw-w64's DDK does not declare the
 * enumeration. */
/* fltkernel.h's FLT_REGISTRATION_FLAGS bit "the filter supports named
 * pipe and mailslot requests" (Windows 8 and later; FLT_REGISTRATION's
 * documentation). Neither header set has it. */
#define RINGSIDE_FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS 0x00000002

typedef enum _RINGSIDE_THREADINFOCLASS {
    RingsideThreadBasicInformation,
    RingsideThreadTimes,
    RingsideThreadPriority,
    RingsideThreadBasePriority,
    RingsideThreadAffinityMask,
    RingsideThreadImpersonationToken,
    RingsideThreadDescriptorTableEntry,
    RingsideThreadEnableAlignmentFaultFixup,
    RingsideThreadEventPair_Reusable,
    RingsideThreadQuerySetWin32StartAddress
} RINGSIDE_THREADINFOCLASS;
