//! WDK layouts the driver declares itself because windows-sys gets them
//! wrong on x64. C headers: wdm.h (`IO_STACK_LOCATION`), fltkernel.h
//! (`FLT_PARAMETERS`), ntifs.h (`FILE_RENAME_INFORMATION`).
//!
//! windows-sys 0.61 drops `POINTER_ALIGNMENT` (microsoft/windows-rs#4404),
//! which on x64 is `DECLSPEC_ALIGN(8)`: every member so marked starts on an
//! 8-byte boundary. The structs below spell that padding out, and the
//! `const` asserts state the WDK offsets. The kernel model's ABI oracle
//! (tests/abi/oracle.c, compiled against mingw-w64's and Wine's headers)
//! checks each of them again (tests/tests/abi_oracle.rs).
//!
//! These are views of a union member: the driver casts a pointer to the
//! `Parameters` union to one of them (src/kernel/irp.rs, filter.rs).

use core::ffi::c_void;
use core::mem::{offset_of, size_of};

/// `IO_STACK_LOCATION.Parameters.DeviceIoControl`: the lengths and control
/// code are `ULONG POINTER_ALIGNMENT`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DeviceIoControlParameters {
    pub output_buffer_length: u32,
    _pad0: u32,
    pub input_buffer_length: u32,
    _pad1: u32,
    pub io_control_code: u32,
    _pad2: u32,
    pub type3_input_buffer: *mut c_void,
}

/// `IO_STACK_LOCATION.Parameters` starts here (after MajorFunction,
/// MinorFunction, Flags, Control and 4 bytes of alignment).
pub const STACK_PARAMETERS: usize = 8;
/// The `Parameters` union's size: four pointers.
pub const STACK_PARAMETERS_SIZE: usize = 32;

// Inside Parameters (+0x08): so IO_STACK_LOCATION+0x08/+0x10/+0x18/+0x20 on
// x64 (WinDbg `dt nt!_IO_STACK_LOCATION`).
const _: () = {
    assert!(offset_of!(DeviceIoControlParameters, output_buffer_length) == 0);
    assert!(offset_of!(DeviceIoControlParameters, input_buffer_length) == 8);
    assert!(offset_of!(DeviceIoControlParameters, io_control_code) == 16);
    assert!(offset_of!(DeviceIoControlParameters, type3_input_buffer) == 24);
    assert!(size_of::<DeviceIoControlParameters>() == STACK_PARAMETERS_SIZE);
};

/// `FLT_PARAMETERS.SetFileInformation`: `FileInformationClass` and
/// `InfoBuffer` are `POINTER_ALIGNMENT`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SetFileInformationParameters {
    pub length: u32,
    _pad0: u32,
    /// A `FILE_INFORMATION_CLASS` (a C enum: 32 bits).
    pub file_information_class: u32,
    _pad1: u32,
    pub parent_of_target: *mut c_void,
    /// The union of `{ReplaceIfExists, AdvanceOnly}`, `ClusterCount` and
    /// `DeleteHandle`; the driver reads none of them.
    pub replace_or_delete_handle: usize,
    pub info_buffer: *mut c_void,
}

/// `FLT_PARAMETERS`' size on x64 (its largest members are 48 bytes).
pub const FLT_PARAMETERS_SIZE: usize = 48;

// FLT_PARAMETERS+0/+8/+16/+24/+32 on x64 (fltkernel.h).
const _: () = {
    assert!(offset_of!(SetFileInformationParameters, length) == 0);
    assert!(offset_of!(SetFileInformationParameters, file_information_class) == 8);
    assert!(offset_of!(SetFileInformationParameters, parent_of_target) == 16);
    assert!(offset_of!(SetFileInformationParameters, replace_or_delete_handle) == 24);
    assert!(offset_of!(SetFileInformationParameters, info_buffer) == 32);
    assert!(size_of::<SetFileInformationParameters>() <= FLT_PARAMETERS_SIZE);
};

/// `FILE_RENAME_INFORMATION` (and `_EX`, whose `Flags` ULONG overlays
/// `ReplaceIfExists`): RootDirectory at +8, FileNameLength at +16, FileName
/// at +20 on x64.
pub mod rename_information {
    pub const ROOT_DIRECTORY: usize = 8;
    pub const FILE_NAME_LENGTH: usize = 16;
    pub const FILE_NAME: usize = 20;
}

/// `THREADINFOCLASS::ThreadQuerySetWin32StartAddress` (ntddk.h): what
/// `ZwQueryInformationThread` answers with a thread's Win32 start address,
/// one pointer-sized value. windows-sys has the value under a feature the
/// driver does not build with, and binds the function to ntdll.dll; the
/// ABI oracle checks this one against Wine's and Microsoft's headers.
pub const THREAD_QUERY_SET_WIN32_START_ADDRESS: u32 = 9;

/// Named pipes (fltkernel.h, wdm.h, ntstatus.h): what the minifilter
/// registers and answers to attach to the named-pipe file system and not
/// to the mailslot one. windows-sys has each under a different module (and
/// types them differently); the ABI oracle checks every one against the
/// headers (tests/tests/abi_oracle.rs).
///
/// `IRP_MJ_CREATE_NAMED_PIPE`: a server creates a pipe instance.
pub const IRP_MJ_CREATE_NAMED_PIPE: u8 = 0x01;
/// `FLT_REGISTRATION.Flags`: FltMgr offers the filter the named-pipe and
/// mailslot volumes (Windows 8 and later), through its InstanceSetupCallback.
pub const FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS: u32 = 0x0000_0002;
/// `FLT_FILESYSTEM_TYPE::FLT_FSTYPE_NPFS`: the named-pipe file system.
pub const FLT_FSTYPE_NPFS: i32 = 25;
/// `FLT_FILESYSTEM_TYPE::FLT_FSTYPE_MSFS`: the mailslot file system.
pub const FLT_FSTYPE_MSFS: i32 = 26;
/// `STATUS_FLT_DO_NOT_ATTACH`: an InstanceSetupCallback declines a volume.
pub const STATUS_FLT_DO_NOT_ATTACH: i32 = 0xC01C_000F_u32 as i32;

/// The object manager's callback structures (wdm.h: `OB_CALLBACK_REGISTRATION`,
/// `OB_OPERATION_REGISTRATION`, `OB_PRE_OPERATION_INFORMATION`,
/// `OB_POST_OPERATION_INFORMATION`), declared here so that one layout is
/// what the driver uses (src/kernel/access.rs) and what the ABI oracle
/// checks (tests/tests/abi_oracle.rs `OB_*`, from mingw-w64's and Wine's
/// wdm.h). windows-sys declares them too; the driver keeps its own so the
/// union members it reads are named views, as above.
pub mod ob {
    use core::ffi::c_void;

    /// `UNICODE_STRING`.
    #[repr(C)]
    #[derive(Debug)]
    pub struct UnicodeString {
        pub length: u16,
        pub maximum_length: u16,
        pub buffer: *const u16,
    }

    /// `OB_OPERATION_REGISTRATION` (wdm.h).
    #[repr(C)]
    #[derive(Debug)]
    pub struct OperationRegistration {
        pub object_type: *const *mut c_void,
        pub operations: u32,
        pub pre_operation: Option<PreOperation>,
        pub post_operation: Option<PostOperation>,
    }

    /// `OB_CALLBACK_REGISTRATION` (wdm.h).
    #[repr(C)]
    #[derive(Debug)]
    pub struct CallbackRegistration {
        pub version: u16,
        pub operation_registration_count: u16,
        pub altitude: UnicodeString,
        pub registration_context: *mut c_void,
        pub operation_registration: *const OperationRegistration,
    }

    /// `OB_PRE_OPERATION_INFORMATION` (wdm.h).
    #[repr(C)]
    #[derive(Debug)]
    pub struct PreOperationInformation {
        pub operation: u32,
        pub flags: u32,
        pub object: *mut c_void,
        pub object_type: *mut c_void,
        pub call_context: *mut c_void,
        pub parameters: *const PreParameters,
    }

    /// The two members `OB_PRE_CREATE_HANDLE_INFORMATION` and
    /// `OB_PRE_DUPLICATE_HANDLE_INFORMATION` share at the start of the
    /// `OB_PRE_OPERATION_PARAMETERS` union.
    #[repr(C)]
    #[derive(Debug)]
    pub struct PreParameters {
        pub desired_access: u32,
        pub original_desired_access: u32,
    }

    /// `OB_POST_OPERATION_INFORMATION` (wdm.h).
    #[repr(C)]
    #[derive(Debug)]
    pub struct PostOperationInformation {
        pub operation: u32,
        pub flags: u32,
        pub object: *mut c_void,
        pub object_type: *mut c_void,
        pub call_context: *mut c_void,
        pub return_status: i32,
        pub parameters: *const PostParameters,
    }

    /// `OB_POST_OPERATION_PARAMETERS`: both members are one `GrantedAccess`.
    #[repr(C)]
    #[derive(Debug)]
    pub struct PostParameters {
        pub granted_access: u32,
    }

    // The layouts the oracle pins (x64).
    const _: () = assert!(core::mem::size_of::<OperationRegistration>() == 32);
    const _: () = assert!(core::mem::offset_of!(OperationRegistration, operations) == 8);
    const _: () = assert!(core::mem::offset_of!(OperationRegistration, pre_operation) == 16);
    const _: () = assert!(core::mem::offset_of!(OperationRegistration, post_operation) == 24);
    const _: () = assert!(core::mem::size_of::<CallbackRegistration>() == 40);
    const _: () = assert!(core::mem::offset_of!(CallbackRegistration, altitude) == 8);
    const _: () = assert!(core::mem::offset_of!(CallbackRegistration, registration_context) == 24);
    const _: () =
        assert!(core::mem::offset_of!(CallbackRegistration, operation_registration) == 32);
    const _: () = assert!(core::mem::offset_of!(PreOperationInformation, object) == 8);
    const _: () = assert!(core::mem::offset_of!(PreOperationInformation, call_context) == 24);
    const _: () = assert!(core::mem::offset_of!(PreOperationInformation, parameters) == 32);
    const _: () = assert!(core::mem::offset_of!(PreParameters, original_desired_access) == 4);
    const _: () = assert!(core::mem::offset_of!(PostOperationInformation, flags) == 4);
    const _: () = assert!(core::mem::offset_of!(PostOperationInformation, object) == 8);
    const _: () = assert!(core::mem::offset_of!(PostOperationInformation, call_context) == 24);
    const _: () = assert!(core::mem::offset_of!(PostOperationInformation, return_status) == 32);
    const _: () = assert!(core::mem::offset_of!(PostOperationInformation, parameters) == 40);

    pub type PreOperation =
        unsafe extern "system" fn(context: *mut c_void, info: *mut PreOperationInformation) -> i32;
    pub type PostOperation =
        unsafe extern "system" fn(context: *mut c_void, info: *const PostOperationInformation);
}
