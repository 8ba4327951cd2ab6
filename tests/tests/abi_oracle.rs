//! The ABI oracle against the driver: every kernel structure field that
//! ringside.sys reads or writes sits where x64 Windows puts it.
//!
//! The oracle (tests/build.rs) compiled `offsetof`/`sizeof` for x64 against
//! mingw-w64's DDK headers, Wine's DDK headers and, for the two FltMgr
//! structures neither defines, Microsoft's documented declarations. The
//! driver reads through windows-sys and, where windows-sys is wrong, through
//! its own `ringside_driver::wdk` layouts; both are compared here.

use core::mem::{offset_of, size_of};

use ringside_driver::wdk;
use ringside_kmodel::layout::{self, OracleEntry, RESOLVED, TABLE};
use windows_sys::Wdk::Foundation::{
    ACCESS_STATE, DEVICE_OBJECT, DRIVER_OBJECT, IO_SECURITY_CONTEXT, IO_STACK_LOCATION, IRP, KDPC,
    MDL, SECURITY_SUBJECT_CONTEXT,
};
use windows_sys::Wdk::Storage::FileSystem::Minifilters::{
    FLT_CALLBACK_DATA, FLT_FILE_NAME_INFORMATION, FLT_IO_PARAMETER_BLOCK,
    FLT_OPERATION_REGISTRATION, FLT_PARAMETERS, FLT_REGISTRATION, FLT_RELATED_OBJECTS,
};
use windows_sys::Wdk::System::SystemServices::{
    EX_RUNDOWN_REF, IMAGE_INFO, IO_CSQ, KTIMER, PS_CREATE_NOTIFY_INFO,
    REG_CREATE_KEY_INFORMATION_V1, REG_DELETE_KEY_INFORMATION, REG_DELETE_VALUE_KEY_INFORMATION,
    REG_POST_OPERATION_INFORMATION, REG_RENAME_KEY_INFORMATION, REG_SET_VALUE_KEY_INFORMATION,
};
use windows_sys::Win32::Foundation::LUID;
use windows_sys::Win32::Foundation::UNICODE_STRING;
use windows_sys::Win32::Security::{SID_AND_ATTRIBUTES, TOKEN_MANDATORY_LABEL, TOKEN_USER};
use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;

fn entry(name: &str) -> &'static OracleEntry {
    TABLE
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no oracle entry {name}"))
}

fn show(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:#x}"))
}

#[test]
fn header_sets_agree_or_the_disagreement_is_resolved() {
    println!(
        "{:<36} {:>8} {:>8} {:>8}  sets",
        "entry", "mingw", "wine", "docs"
    );
    let mut unresolved = Vec::new();
    for e in TABLE {
        let values: Vec<u64> = [e.mingw, e.wine, e.docs].into_iter().flatten().collect();
        let agree = values.windows(2).all(|w| w[0] == w[1]);
        let resolved = RESOLVED.iter().find(|(n, _, _)| *n == e.name);
        println!(
            "{:<36} {:>8} {:>8} {:>8}  {}",
            e.name,
            show(e.mingw),
            show(e.wine),
            show(e.docs),
            if agree {
                ""
            } else if resolved.is_some() {
                "disagree: resolved"
            } else {
                "DISAGREE"
            }
        );
        match (agree, resolved) {
            (false, None) => unresolved.push(format!(
                "{}: mingw-w64 {}, Wine {}, documented {}",
                e.name,
                show(e.mingw),
                show(e.wine),
                show(e.docs)
            )),
            (true, Some(_)) => unresolved.push(format!(
                "{}: resolved in tests/build.rs, but the sets agree now; drop the resolution",
                e.name
            )),
            _ => {}
        }
    }
    for (name, set, why) in RESOLVED {
        println!("{name}: {set} is right: {why}");
    }
    assert!(
        unresolved.is_empty(),
        "header sets disagree (settle each in tests/build.rs RESOLVED with the reason):\n{}",
        unresolved.join("\n")
    );
    let two_sets = TABLE
        .iter()
        .filter(|e| e.mingw.is_some() && e.wine.is_some())
        .count();
    println!(
        "{} entries, {two_sets} checked against both header sets",
        TABLE.len()
    );
}

/// One field (or size) as the driver sees it, and the oracle's name for it.
struct Read {
    oracle: &'static str,
    driver: usize,
    /// What the driver takes the layout from.
    from: &'static str,
}

macro_rules! sys {
    ($oracle:literal, $ty:ty, $($field:tt)+) => {
        Read { oracle: $oracle, driver: offset_of!($ty, $($field)+), from: "windows-sys" }
    };
}
macro_rules! sys_size {
    ($oracle:literal, $ty:ty) => {
        Read {
            oracle: $oracle,
            driver: size_of::<$ty>(),
            from: "windows-sys",
        }
    };
}

/// A field of the driver's own object-manager layouts (`wdk::ob`).
macro_rules! ob {
    ($oracle:literal, size $ty:ident) => {
        Read {
            oracle: $oracle,
            driver: size_of::<wdk::ob::$ty>(),
            from: "ringside_driver::wdk::ob",
        }
    };
    ($oracle:literal, $ty:ident, $field:ident) => {
        Read {
            oracle: $oracle,
            driver: offset_of!(wdk::ob::$ty, $field),
            from: "ringside_driver::wdk::ob",
        }
    };
}

/// Every field the driver reads or writes (src/kernel/*.rs), through the
/// layout it really uses.
fn driver_reads() -> Vec<Read> {
    let params = wdk::STACK_PARAMETERS;
    vec![
        // IRP dispatch (device.rs, irp.rs).
        sys!("IRP_MDL_ADDRESS", IRP, MdlAddress),
        sys!("IRP_SYSTEM_BUFFER", IRP, AssociatedIrp.SystemBuffer),
        sys!("IRP_IO_STATUS", IRP, IoStatus),
        sys!("IRP_REQUESTOR_MODE", IRP, RequestorMode),
        sys!(
            "IRP_CURRENT_STACK_LOCATION",
            IRP,
            Tail.Overlay.Anonymous2.Anonymous.CurrentStackLocation
        ),
        sys!("IO_STATUS_INFORMATION", IO_STATUS_BLOCK, Information),
        sys!("STACK_MAJOR", IO_STACK_LOCATION, MajorFunction),
        sys!("STACK_PARAMETERS", IO_STACK_LOCATION, Parameters),
        sys!(
            "STACK_CREATE_SECURITY_CONTEXT",
            IO_STACK_LOCATION,
            Parameters.Create.SecurityContext
        ),
        sys!("STACK_FILE_OBJECT", IO_STACK_LOCATION, FileObject),
        Read {
            oracle: "STACK_IOCTL_OUTPUT_LENGTH",
            driver: params + offset_of!(wdk::DeviceIoControlParameters, output_buffer_length),
            from: "ringside_driver::wdk",
        },
        Read {
            oracle: "STACK_IOCTL_INPUT_LENGTH",
            driver: params + offset_of!(wdk::DeviceIoControlParameters, input_buffer_length),
            from: "ringside_driver::wdk",
        },
        Read {
            oracle: "STACK_IOCTL_CODE",
            driver: params + offset_of!(wdk::DeviceIoControlParameters, io_control_code),
            from: "ringside_driver::wdk",
        },
        sys!(
            "SECURITY_CONTEXT_ACCESS_STATE",
            IO_SECURITY_CONTEXT,
            AccessState
        ),
        sys!(
            "SECURITY_CONTEXT_DESIRED_ACCESS",
            IO_SECURITY_CONTEXT,
            DesiredAccess
        ),
        sys!(
            "ACCESS_STATE_SUBJECT_CONTEXT",
            ACCESS_STATE,
            SubjectSecurityContext
        ),
        sys!(
            "SUBJECT_CLIENT_TOKEN",
            SECURITY_SUBJECT_CONTEXT,
            ClientToken
        ),
        sys!(
            "SUBJECT_PRIMARY_TOKEN",
            SECURITY_SUBJECT_CONTEXT,
            PrimaryToken
        ),
        sys!("MDL_FLAGS", MDL, MdlFlags),
        sys!("MDL_BYTE_COUNT", MDL, ByteCount),
        sys!("MDL_MAPPED_SYSTEM_VA", MDL, MappedSystemVa),
        sys!("US_LENGTH", UNICODE_STRING, Length),
        sys!("US_BUFFER", UNICODE_STRING, Buffer),
        sys!("DRIVER_MAJOR_FUNCTION", DRIVER_OBJECT, MajorFunction),
        sys!("DRIVER_UNLOAD", DRIVER_OBJECT, DriverUnload),
        sys!("DEVICE_FLAGS", DEVICE_OBJECT, Flags),
        // Objects the driver allocates and hands to the kernel (globals.rs).
        sys_size!("KDPC_SIZE", KDPC),
        sys_size!("KTIMER_SIZE", KTIMER),
        sys_size!("IO_CSQ_SIZE", IO_CSQ),
        sys_size!("EX_RUNDOWN_REF_SIZE", EX_RUNDOWN_REF),
        // Notify routines (notify.rs).
        sys!("CI_FLAGS", PS_CREATE_NOTIFY_INFO, Anonymous),
        sys!("CI_PARENT", PS_CREATE_NOTIFY_INFO, ParentProcessId),
        sys!(
            "CI_CREATING_THREAD",
            PS_CREATE_NOTIFY_INFO,
            CreatingThreadId
        ),
        sys!("CI_FILE_OBJECT", PS_CREATE_NOTIFY_INFO, FileObject),
        sys!("CI_IMAGE_FILE_NAME", PS_CREATE_NOTIFY_INFO, ImageFileName),
        sys!("CI_COMMAND_LINE", PS_CREATE_NOTIFY_INFO, CommandLine),
        sys!("II_PROPERTIES", IMAGE_INFO, Anonymous),
        sys!("II_IMAGE_BASE", IMAGE_INFO, ImageBase),
        sys!("II_IMAGE_SIZE", IMAGE_INFO, ImageSize),
        sys!("TOKEN_USER_USER", TOKEN_USER, User),
        sys!("TOKEN_LABEL_LABEL", TOKEN_MANDATORY_LABEL, Label),
        sys!("SAA_SID", SID_AND_ATTRIBUTES, Sid),
        // The logon session SeQueryAuthenticationIdToken writes (notify.rs,
        // `TokenSids::query`).
        sys_size!("LUID_SIZE", LUID),
        sys!("LUID_LOW_PART", LUID, LowPart),
        sys!("LUID_HIGH_PART", LUID, HighPart),
        // The thread-creation routine (thread.rs): the information class it
        // asks ZwQueryInformationThread for, and the pointer it gets back.
        Read {
            oracle: "THREAD_QUERY_SET_WIN32_START_ADDRESS",
            driver: wdk::THREAD_QUERY_SET_WIN32_START_ADDRESS as usize,
            from: "ringside_driver::wdk",
        },
        // The minifilter on the named-pipe file system (filter.rs): the
        // major function it registers, the registration flag, the
        // file-system types its InstanceSetupCallback tells apart, and the
        // status that declines a volume.
        Read {
            oracle: "IRP_MJ_CREATE_NAMED_PIPE",
            driver: wdk::IRP_MJ_CREATE_NAMED_PIPE as usize,
            from: "ringside_driver::wdk",
        },
        Read {
            oracle: "FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS",
            driver: wdk::FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS as usize,
            from: "ringside_driver::wdk",
        },
        Read {
            oracle: "FLT_FSTYPE_NPFS",
            driver: wdk::FLT_FSTYPE_NPFS as usize,
            from: "ringside_driver::wdk",
        },
        Read {
            oracle: "FLT_FSTYPE_MSFS",
            driver: wdk::FLT_FSTYPE_MSFS as usize,
            from: "ringside_driver::wdk",
        },
        Read {
            oracle: "STATUS_FLT_DO_NOT_ATTACH",
            driver: wdk::STATUS_FLT_DO_NOT_ATTACH as u32 as usize,
            from: "ringside_driver::wdk",
        },
        Read {
            oracle: "THREAD_START_ADDRESS_SIZE",
            driver: size_of::<usize>(),
            from: "the driver's usize buffer",
        },
        // The registry callback (registry.rs): what it reads of a value set.
        sys_size!("REG_POST_INFO_SIZE", REG_POST_OPERATION_INFORMATION),
        sys!("RPO_OBJECT", REG_POST_OPERATION_INFORMATION, Object),
        sys!("RPO_STATUS", REG_POST_OPERATION_INFORMATION, Status),
        sys!(
            "RPO_PRE_INFORMATION",
            REG_POST_OPERATION_INFORMATION,
            PreInformation
        ),
        sys_size!("REG_SET_VALUE_INFO_SIZE", REG_SET_VALUE_KEY_INFORMATION),
        sys!("RSV_VALUE_NAME", REG_SET_VALUE_KEY_INFORMATION, ValueName),
        sys!("RSV_TYPE", REG_SET_VALUE_KEY_INFORMATION, Type),
        sys!("RSV_DATA", REG_SET_VALUE_KEY_INFORMATION, Data),
        sys!("RSV_DATA_SIZE", REG_SET_VALUE_KEY_INFORMATION, DataSize),
        // ... and of key creation, deletion and rename, and where it hands a
        // held key name from the pre- to the post-notification.
        sys!(
            "RPO_CALL_CONTEXT",
            REG_POST_OPERATION_INFORMATION,
            CallContext
        ),
        sys_size!("REG_DELETE_KEY_INFO_SIZE", REG_DELETE_KEY_INFORMATION),
        sys!("RDK_OBJECT", REG_DELETE_KEY_INFORMATION, Object),
        sys!("RDK_CALL_CONTEXT", REG_DELETE_KEY_INFORMATION, CallContext),
        sys_size!(
            "REG_DELETE_VALUE_INFO_SIZE",
            REG_DELETE_VALUE_KEY_INFORMATION
        ),
        sys!(
            "RDV_VALUE_NAME",
            REG_DELETE_VALUE_KEY_INFORMATION,
            ValueName
        ),
        sys_size!("REG_RENAME_KEY_INFO_SIZE", REG_RENAME_KEY_INFORMATION),
        sys!("RRK_OBJECT", REG_RENAME_KEY_INFORMATION, Object),
        sys!("RRK_NEW_NAME", REG_RENAME_KEY_INFORMATION, NewName),
        sys!("RRK_CALL_CONTEXT", REG_RENAME_KEY_INFORMATION, CallContext),
        sys_size!("REG_CREATE_KEY_INFO_SIZE", REG_CREATE_KEY_INFORMATION_V1),
        // The object manager's callbacks (access.rs, through
        // ringside_driver::wdk::ob): the registration it writes, the
        // information it reads (and CallContext, which it writes).
        ob!("OB_CBREG_SIZE", size CallbackRegistration),
        ob!("OB_CBREG_VERSION", CallbackRegistration, version),
        ob!(
            "OB_CBREG_COUNT",
            CallbackRegistration,
            operation_registration_count
        ),
        ob!("OB_CBREG_ALTITUDE", CallbackRegistration, altitude),
        ob!(
            "OB_CBREG_CONTEXT",
            CallbackRegistration,
            registration_context
        ),
        ob!(
            "OB_CBREG_OPERATIONS",
            CallbackRegistration,
            operation_registration
        ),
        ob!("OB_OPREG_SIZE", size OperationRegistration),
        ob!("OB_OPREG_OBJECT_TYPE", OperationRegistration, object_type),
        ob!("OB_OPREG_OPERATIONS", OperationRegistration, operations),
        ob!("OB_OPREG_PRE", OperationRegistration, pre_operation),
        ob!("OB_OPREG_POST", OperationRegistration, post_operation),
        ob!("OB_PRE_INFO_SIZE", size PreOperationInformation),
        ob!("OB_PRE_OPERATION", PreOperationInformation, operation),
        ob!("OB_PRE_FLAGS", PreOperationInformation, flags),
        ob!("OB_PRE_OBJECT", PreOperationInformation, object),
        ob!("OB_PRE_CALL_CONTEXT", PreOperationInformation, call_context),
        ob!("OB_PRE_PARAMETERS", PreOperationInformation, parameters),
        ob!(
            "OB_PRE_CREATE_ORIGINAL_DESIRED",
            PreParameters,
            original_desired_access
        ),
        ob!(
            "OB_PRE_DUP_ORIGINAL_DESIRED",
            PreParameters,
            original_desired_access
        ),
        ob!("OB_POST_INFO_SIZE", size PostOperationInformation),
        ob!("OB_POST_OPERATION", PostOperationInformation, operation),
        ob!("OB_POST_FLAGS", PostOperationInformation, flags),
        ob!("OB_POST_OBJECT", PostOperationInformation, object),
        ob!(
            "OB_POST_CALL_CONTEXT",
            PostOperationInformation,
            call_context
        ),
        ob!(
            "OB_POST_RETURN_STATUS",
            PostOperationInformation,
            return_status
        ),
        ob!("OB_POST_PARAMETERS", PostOperationInformation, parameters),
        ob!("OB_POST_CREATE_GRANTED", PostParameters, granted_access),
        ob!("OB_POST_DUP_GRANTED", PostParameters, granted_access),
        // The minifilter (filter.rs): registration it writes, data it reads.
        sys_size!("FLT_REGISTRATION_SIZE", FLT_REGISTRATION),
        sys!("REG_SIZE", FLT_REGISTRATION, Size),
        sys!("REG_VERSION", FLT_REGISTRATION, Version),
        sys!("REG_FLAGS", FLT_REGISTRATION, Flags),
        sys!("REG_CONTEXTS", FLT_REGISTRATION, ContextRegistration),
        sys!("REG_OPERATIONS", FLT_REGISTRATION, OperationRegistration),
        sys!("REG_UNLOAD", FLT_REGISTRATION, FilterUnloadCallback),
        sys!(
            "REG_INSTANCE_SETUP",
            FLT_REGISTRATION,
            InstanceSetupCallback
        ),
        sys!(
            "REG_INSTANCE_TEARDOWN_START",
            FLT_REGISTRATION,
            InstanceTeardownStartCallback
        ),
        sys!(
            "REG_INSTANCE_TEARDOWN_COMPLETE",
            FLT_REGISTRATION,
            InstanceTeardownCompleteCallback
        ),
        sys_size!("OPERATION_SIZE", FLT_OPERATION_REGISTRATION),
        sys!("OP_MAJOR", FLT_OPERATION_REGISTRATION, MajorFunction),
        sys!("OP_FLAGS", FLT_OPERATION_REGISTRATION, Flags),
        sys!("OP_PRE", FLT_OPERATION_REGISTRATION, PreOperation),
        sys!("OP_POST", FLT_OPERATION_REGISTRATION, PostOperation),
        sys!("CD_IOPB", FLT_CALLBACK_DATA, Iopb),
        sys!("CD_IO_STATUS", FLT_CALLBACK_DATA, IoStatus),
        sys!("IOPB_IRP_FLAGS", FLT_IO_PARAMETER_BLOCK, IrpFlags),
        sys!(
            "IOPB_TARGET_FILE_OBJECT",
            FLT_IO_PARAMETER_BLOCK,
            TargetFileObject
        ),
        sys!("IOPB_PARAMETERS", FLT_IO_PARAMETER_BLOCK, Parameters),
        sys_size!("FLT_PARAMETERS_SIZE", FLT_PARAMETERS),
        sys!(
            "FP_CREATE_SECURITY_CONTEXT",
            FLT_PARAMETERS,
            Create.SecurityContext
        ),
        sys!("FP_CREATE_OPTIONS", FLT_PARAMETERS, Create.Options),
        Read {
            oracle: "FP_SET_INFO_LENGTH",
            driver: offset_of!(wdk::SetFileInformationParameters, length),
            from: "ringside_driver::wdk",
        },
        Read {
            oracle: "FP_SET_INFO_CLASS",
            driver: offset_of!(wdk::SetFileInformationParameters, file_information_class),
            from: "ringside_driver::wdk",
        },
        Read {
            oracle: "FP_SET_INFO_BUFFER",
            driver: offset_of!(wdk::SetFileInformationParameters, info_buffer),
            from: "ringside_driver::wdk",
        },
        sys!("RO_INSTANCE", FLT_RELATED_OBJECTS, Instance),
        sys!("RO_FILE_OBJECT", FLT_RELATED_OBJECTS, FileObject),
        sys!("NI_NAME", FLT_FILE_NAME_INFORMATION, Name),
        Read {
            oracle: "RENAME_ROOT_DIRECTORY",
            driver: wdk::rename_information::ROOT_DIRECTORY,
            from: "ringside_driver::wdk",
        },
        Read {
            oracle: "RENAME_FILE_NAME_LENGTH",
            driver: wdk::rename_information::FILE_NAME_LENGTH,
            from: "ringside_driver::wdk",
        },
        Read {
            oracle: "RENAME_FILE_NAME",
            driver: wdk::rename_information::FILE_NAME,
            from: "ringside_driver::wdk",
        },
        // FileRenameInformationEx: the same offsets, with Flags (a ULONG)
        // at 0, which record.rs reads for the Ex classes; so does the
        // FileDispositionInformationEx flags word.
        Read {
            oracle: "RENAME_EX_FLAGS",
            driver: 0,
            from: "ringside_driver::record (u32 at 0)",
        },
        Read {
            oracle: "RENAME_EX_ROOT_DIRECTORY",
            driver: wdk::rename_information::ROOT_DIRECTORY,
            from: "ringside_driver::wdk",
        },
        Read {
            oracle: "RENAME_EX_FILE_NAME_LENGTH",
            driver: wdk::rename_information::FILE_NAME_LENGTH,
            from: "ringside_driver::wdk",
        },
        Read {
            oracle: "RENAME_EX_FILE_NAME",
            driver: wdk::rename_information::FILE_NAME,
            from: "ringside_driver::wdk",
        },
        Read {
            oracle: "DISPOSITION_EX_FLAGS",
            driver: 0,
            from: "ringside_driver::record (u32 at 0)",
        },
    ]
}

#[test]
fn every_field_the_driver_reads_is_where_x64_windows_puts_it() {
    let mut wrong = Vec::new();
    for read in driver_reads() {
        let e = entry(read.oracle);
        let truth = [e.mingw, e.wine, e.docs]
            .into_iter()
            .flatten()
            .next()
            .expect("an oracle entry has a value");
        if read.driver as u64 != truth {
            wrong.push(format!(
                "{}: the driver reads {:#x} ({}), x64 Windows has it at {:#x} (mingw-w64 {}, Wine {}, documented {})",
                read.oracle,
                read.driver,
                read.from,
                truth,
                show(e.mingw),
                show(e.wine),
                show(e.docs)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "layout errors in ringside.sys:\n{}",
        wrong.join("\n")
    );
}

/// The model's constants are the oracle's (and so can disagree with the
/// driver): spot-check the two structures windows-sys gets wrong.
#[test]
fn the_model_builds_the_pointer_aligned_members_at_their_x64_offsets() {
    assert_eq!(layout::STACK_IOCTL_OUTPUT_LENGTH, 0x08);
    assert_eq!(layout::STACK_IOCTL_INPUT_LENGTH, 0x10);
    assert_eq!(layout::STACK_IOCTL_CODE, 0x18);
    assert_eq!(layout::STACK_IOCTL_TYPE3_INPUT, 0x20);
    assert_eq!(layout::FP_SET_INFO_CLASS, 8);
    assert_eq!(layout::FP_SET_INFO_PARENT_OF_TARGET, 16);
    assert_eq!(layout::FP_SET_INFO_DELETE_HANDLE, 24);
    assert_eq!(layout::FP_SET_INFO_BUFFER, 32);
}
