//! Offsets of the kernel structures the model builds or reads, taken from
//! `windows-sys` (the driver's own bindings, same version and features) with
//! `offset_of!`, so guest structures have exactly the driver's layout.

use core::mem::{offset_of, size_of};

use windows_sys::Wdk::Foundation::{
    DEVICE_OBJECT, DRIVER_OBJECT, FILE_OBJECT, IO_STACK_LOCATION, IRP, MDL,
};
use windows_sys::Wdk::Storage::FileSystem::Minifilters::{
    FLT_CALLBACK_DATA, FLT_FILE_NAME_INFORMATION, FLT_IO_PARAMETER_BLOCK,
    FLT_OPERATION_REGISTRATION, FLT_REGISTRATION, FLT_RELATED_OBJECTS,
};
use windows_sys::Wdk::System::SystemServices::{IMAGE_INFO, IO_CSQ, PS_CREATE_NOTIFY_INFO};

pub const DRIVER_OBJECT_SIZE: usize = size_of::<DRIVER_OBJECT>();
pub const DRIVER_DEVICE_OBJECT: u64 = offset_of!(DRIVER_OBJECT, DeviceObject) as u64;
pub const DRIVER_START: u64 = offset_of!(DRIVER_OBJECT, DriverStart) as u64;
pub const DRIVER_SIZE: u64 = offset_of!(DRIVER_OBJECT, DriverSize) as u64;
pub const DRIVER_EXTENSION: u64 = offset_of!(DRIVER_OBJECT, DriverExtension) as u64;
pub const DRIVER_NAME: u64 = offset_of!(DRIVER_OBJECT, DriverName) as u64;
pub const DRIVER_UNLOAD: u64 = offset_of!(DRIVER_OBJECT, DriverUnload) as u64;
pub const DRIVER_MAJOR_FUNCTION: u64 = offset_of!(DRIVER_OBJECT, MajorFunction) as u64;

pub const DEVICE_OBJECT_SIZE: usize = size_of::<DEVICE_OBJECT>();
pub const DEVICE_DRIVER_OBJECT: u64 = offset_of!(DEVICE_OBJECT, DriverObject) as u64;
pub const DEVICE_NEXT: u64 = offset_of!(DEVICE_OBJECT, NextDevice) as u64;
pub const DEVICE_FLAGS: u64 = offset_of!(DEVICE_OBJECT, Flags) as u64;
pub const DEVICE_CHARACTERISTICS: u64 = offset_of!(DEVICE_OBJECT, Characteristics) as u64;
pub const DEVICE_EXTENSION: u64 = offset_of!(DEVICE_OBJECT, DeviceExtension) as u64;
pub const DEVICE_TYPE: u64 = offset_of!(DEVICE_OBJECT, DeviceType) as u64;
pub const DEVICE_STACK_SIZE: u64 = offset_of!(DEVICE_OBJECT, StackSize) as u64;

pub const FILE_OBJECT_SIZE: usize = size_of::<FILE_OBJECT>();
pub const FILE_DEVICE_OBJECT: u64 = offset_of!(FILE_OBJECT, DeviceObject) as u64;
pub const FILE_FS_CONTEXT: u64 = offset_of!(FILE_OBJECT, FsContext) as u64;
pub const FILE_FILE_NAME: u64 = offset_of!(FILE_OBJECT, FileName) as u64;

pub const IRP_SIZE: usize = size_of::<IRP>();
pub const IRP_MDL_ADDRESS: u64 = offset_of!(IRP, MdlAddress) as u64;
pub const IRP_SYSTEM_BUFFER: u64 = offset_of!(IRP, AssociatedIrp.SystemBuffer) as u64;
pub const IRP_IO_STATUS: u64 = offset_of!(IRP, IoStatus) as u64;
pub const IRP_REQUESTOR_MODE: u64 = offset_of!(IRP, RequestorMode) as u64;
pub const IRP_PENDING_RETURNED: u64 = offset_of!(IRP, PendingReturned) as u64;
pub const IRP_STACK_COUNT: u64 = offset_of!(IRP, StackCount) as u64;
pub const IRP_CURRENT_LOCATION: u64 = offset_of!(IRP, CurrentLocation) as u64;
pub const IRP_CANCEL: u64 = offset_of!(IRP, Cancel) as u64;
pub const IRP_CANCEL_ROUTINE: u64 = offset_of!(IRP, CancelRoutine) as u64;
pub const IRP_USER_BUFFER: u64 = offset_of!(IRP, UserBuffer) as u64;
pub const IRP_DRIVER_CONTEXT: u64 =
    offset_of!(IRP, Tail.Overlay.Anonymous1.Anonymous.DriverContext) as u64;
pub const IRP_THREAD: u64 = offset_of!(IRP, Tail.Overlay.Thread) as u64;
pub const IRP_CURRENT_STACK_LOCATION: u64 =
    offset_of!(IRP, Tail.Overlay.Anonymous2.Anonymous.CurrentStackLocation) as u64;

pub const IO_STACK_LOCATION_SIZE: usize = size_of::<IO_STACK_LOCATION>();
pub const STACK_MAJOR: u64 = offset_of!(IO_STACK_LOCATION, MajorFunction) as u64;
pub const STACK_CONTROL: u64 = offset_of!(IO_STACK_LOCATION, Control) as u64;
pub const STACK_PARAMETERS: u64 = offset_of!(IO_STACK_LOCATION, Parameters) as u64;
pub const STACK_IOCTL_OUTPUT_LENGTH: u64 = offset_of!(
    IO_STACK_LOCATION,
    Parameters.DeviceIoControl.OutputBufferLength
) as u64;
pub const STACK_IOCTL_INPUT_LENGTH: u64 = offset_of!(
    IO_STACK_LOCATION,
    Parameters.DeviceIoControl.InputBufferLength
) as u64;
pub const STACK_IOCTL_CODE: u64 =
    offset_of!(IO_STACK_LOCATION, Parameters.DeviceIoControl.IoControlCode) as u64;
pub const STACK_CREATE_SECURITY_CONTEXT: u64 =
    offset_of!(IO_STACK_LOCATION, Parameters.Create.SecurityContext) as u64;
pub const STACK_DEVICE_OBJECT: u64 = offset_of!(IO_STACK_LOCATION, DeviceObject) as u64;
pub const STACK_FILE_OBJECT: u64 = offset_of!(IO_STACK_LOCATION, FileObject) as u64;

pub const MDL_SIZE: usize = size_of::<MDL>();
pub const MDL_FLAGS: u64 = offset_of!(MDL, MdlFlags) as u64;
pub const MDL_SIZE_FIELD: u64 = offset_of!(MDL, Size) as u64;
pub const MDL_MAPPED_SYSTEM_VA: u64 = offset_of!(MDL, MappedSystemVa) as u64;
pub const MDL_START_VA: u64 = offset_of!(MDL, StartVa) as u64;
pub const MDL_BYTE_COUNT: u64 = offset_of!(MDL, ByteCount) as u64;
pub const MDL_BYTE_OFFSET: u64 = offset_of!(MDL, ByteOffset) as u64;

pub const CSQ_INSERT: u64 = offset_of!(IO_CSQ, CsqInsertIrp) as u64;
pub const CSQ_REMOVE: u64 = offset_of!(IO_CSQ, CsqRemoveIrp) as u64;
pub const CSQ_PEEK: u64 = offset_of!(IO_CSQ, CsqPeekNextIrp) as u64;
pub const CSQ_ACQUIRE: u64 = offset_of!(IO_CSQ, CsqAcquireLock) as u64;
pub const CSQ_RELEASE: u64 = offset_of!(IO_CSQ, CsqReleaseLock) as u64;
pub const CSQ_COMPLETE_CANCELED: u64 = offset_of!(IO_CSQ, CsqCompleteCanceledIrp) as u64;

pub const FLT_REGISTRATION_SIZE: usize = size_of::<FLT_REGISTRATION>();
pub const REG_OPERATIONS: u64 = offset_of!(FLT_REGISTRATION, OperationRegistration) as u64;
pub const REG_UNLOAD: u64 = offset_of!(FLT_REGISTRATION, FilterUnloadCallback) as u64;
pub const REG_INSTANCE_SETUP: u64 = offset_of!(FLT_REGISTRATION, InstanceSetupCallback) as u64;
pub const REG_CONTEXTS: u64 = offset_of!(FLT_REGISTRATION, ContextRegistration) as u64;
pub const OPERATION_SIZE: u64 = size_of::<FLT_OPERATION_REGISTRATION>() as u64;
pub const OP_MAJOR: u64 = offset_of!(FLT_OPERATION_REGISTRATION, MajorFunction) as u64;
pub const OP_FLAGS: u64 = offset_of!(FLT_OPERATION_REGISTRATION, Flags) as u64;
pub const OP_PRE: u64 = offset_of!(FLT_OPERATION_REGISTRATION, PreOperation) as u64;
pub const OP_POST: u64 = offset_of!(FLT_OPERATION_REGISTRATION, PostOperation) as u64;

pub const CALLBACK_DATA_SIZE: usize = size_of::<FLT_CALLBACK_DATA>();
pub const CD_FLAGS: u64 = offset_of!(FLT_CALLBACK_DATA, Flags) as u64;
pub const CD_THREAD: u64 = offset_of!(FLT_CALLBACK_DATA, Thread) as u64;
pub const CD_IOPB: u64 = offset_of!(FLT_CALLBACK_DATA, Iopb) as u64;
pub const CD_IO_STATUS: u64 = offset_of!(FLT_CALLBACK_DATA, IoStatus) as u64;
pub const CD_REQUESTOR_MODE: u64 = offset_of!(FLT_CALLBACK_DATA, RequestorMode) as u64;
pub const IOPB_SIZE: usize = size_of::<FLT_IO_PARAMETER_BLOCK>();
pub const IOPB_MAJOR: u64 = offset_of!(FLT_IO_PARAMETER_BLOCK, MajorFunction) as u64;
pub const IOPB_IRP_FLAGS: u64 = offset_of!(FLT_IO_PARAMETER_BLOCK, IrpFlags) as u64;
pub const IOPB_TARGET_FILE_OBJECT: u64 =
    offset_of!(FLT_IO_PARAMETER_BLOCK, TargetFileObject) as u64;
pub const IOPB_TARGET_INSTANCE: u64 = offset_of!(FLT_IO_PARAMETER_BLOCK, TargetInstance) as u64;
pub const IOPB_PARAMETERS: u64 = offset_of!(FLT_IO_PARAMETER_BLOCK, Parameters) as u64;
pub const CREATE_SECURITY_CONTEXT: u64 = IOPB_PARAMETERS
    + offset_of!(
        windows_sys::Wdk::Storage::FileSystem::Minifilters::FLT_PARAMETERS,
        Create.SecurityContext
    ) as u64;
pub const CREATE_OPTIONS: u64 = IOPB_PARAMETERS
    + offset_of!(
        windows_sys::Wdk::Storage::FileSystem::Minifilters::FLT_PARAMETERS,
        Create.Options
    ) as u64;
pub const SET_INFO_LENGTH: u64 = IOPB_PARAMETERS
    + offset_of!(
        windows_sys::Wdk::Storage::FileSystem::Minifilters::FLT_PARAMETERS,
        SetFileInformation.Length
    ) as u64;
pub const SET_INFO_CLASS: u64 = IOPB_PARAMETERS
    + offset_of!(
        windows_sys::Wdk::Storage::FileSystem::Minifilters::FLT_PARAMETERS,
        SetFileInformation.FileInformationClass
    ) as u64;
pub const SET_INFO_BUFFER: u64 = IOPB_PARAMETERS
    + offset_of!(
        windows_sys::Wdk::Storage::FileSystem::Minifilters::FLT_PARAMETERS,
        SetFileInformation.InfoBuffer
    ) as u64;
pub const WRITE_LENGTH: u64 = IOPB_PARAMETERS
    + offset_of!(
        windows_sys::Wdk::Storage::FileSystem::Minifilters::FLT_PARAMETERS,
        Write.Length
    ) as u64;
pub const RELATED_SIZE: usize = size_of::<FLT_RELATED_OBJECTS>();
pub const RO_FILTER: u64 = offset_of!(FLT_RELATED_OBJECTS, Filter) as u64;
pub const RO_VOLUME: u64 = offset_of!(FLT_RELATED_OBJECTS, Volume) as u64;
pub const RO_INSTANCE: u64 = offset_of!(FLT_RELATED_OBJECTS, Instance) as u64;
pub const RO_FILE_OBJECT: u64 = offset_of!(FLT_RELATED_OBJECTS, FileObject) as u64;
pub const NAME_INFO_SIZE: usize = size_of::<FLT_FILE_NAME_INFORMATION>();
pub const NI_NAMES_PARSED: u64 = offset_of!(FLT_FILE_NAME_INFORMATION, NamesParsed) as u64;
pub const NI_FORMAT: u64 = offset_of!(FLT_FILE_NAME_INFORMATION, Format) as u64;
pub const NI_NAME: u64 = offset_of!(FLT_FILE_NAME_INFORMATION, Name) as u64;
pub const NI_VOLUME: u64 = offset_of!(FLT_FILE_NAME_INFORMATION, Volume) as u64;

pub const CREATE_INFO_SIZE: usize = size_of::<PS_CREATE_NOTIFY_INFO>();
pub const CI_SIZE: u64 = offset_of!(PS_CREATE_NOTIFY_INFO, Size) as u64;
pub const CI_FLAGS: u64 = offset_of!(PS_CREATE_NOTIFY_INFO, Anonymous) as u64;
pub const CI_PARENT: u64 = offset_of!(PS_CREATE_NOTIFY_INFO, ParentProcessId) as u64;
pub const CI_CREATING_THREAD: u64 = offset_of!(PS_CREATE_NOTIFY_INFO, CreatingThreadId) as u64;
pub const CI_FILE_OBJECT: u64 = offset_of!(PS_CREATE_NOTIFY_INFO, FileObject) as u64;
pub const CI_IMAGE_FILE_NAME: u64 = offset_of!(PS_CREATE_NOTIFY_INFO, ImageFileName) as u64;
pub const CI_COMMAND_LINE: u64 = offset_of!(PS_CREATE_NOTIFY_INFO, CommandLine) as u64;
pub const CI_CREATION_STATUS: u64 = offset_of!(PS_CREATE_NOTIFY_INFO, CreationStatus) as u64;
pub const IMAGE_INFO_SIZE: usize = size_of::<IMAGE_INFO>();
pub const II_PROPERTIES: u64 = offset_of!(IMAGE_INFO, Anonymous) as u64;
pub const II_IMAGE_BASE: u64 = offset_of!(IMAGE_INFO, ImageBase) as u64;
pub const II_IMAGE_SIZE: u64 = offset_of!(IMAGE_INFO, ImageSize) as u64;
