/*
 * FltMgr structures that neither Debian header set defines (Wine's
 * fltkernel.h declares them opaque, mingw-w64 has no fltkernel.h),
 * transcribed member for member from the "Syntax" sections of Microsoft's
 * fltkernel.h reference pages (ns-fltkernel-_flt_related_objects,
 * ns-fltkernel-_flt_file_name_information). Compiled over mingw-w64's base
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
