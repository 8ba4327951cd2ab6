//! Offsets and sizes of the kernel structures the model builds or reads,
//! as x64 Windows lays them out: from the ABI oracle (tests/build.rs,
//! tests/abi/oracle.c), which compiles `offsetof`/`sizeof` against
//! mingw-w64's and Wine's DDK headers. Never from windows-sys, the driver's
//! own bindings: a model that shared them could not disagree with the
//! driver (windows-sys 0.61 drops `POINTER_ALIGNMENT`, microsoft/windows-rs#4404).

include!(concat!(env!("OUT_DIR"), "/abi.rs"));

/// One oracle entry: its value in each header set that declares it.
#[derive(Debug, Clone, Copy)]
pub struct OracleEntry {
    pub name: &'static str,
    /// A `sizeof` (else an `offsetof`).
    pub size: bool,
    pub mingw: Option<u64>,
    pub wine: Option<u64>,
    /// Microsoft's documented declaration (tests/abi/documented.h), for the
    /// FltMgr structures neither header set defines.
    pub docs: Option<u64>,
}

// FLT_IO_PARAMETER_BLOCK.Parameters members, from the IOPB's start.
pub const CREATE_SECURITY_CONTEXT: u64 = IOPB_PARAMETERS + FP_CREATE_SECURITY_CONTEXT;
pub const CREATE_OPTIONS: u64 = IOPB_PARAMETERS + FP_CREATE_OPTIONS;
pub const SET_INFO_LENGTH: u64 = IOPB_PARAMETERS + FP_SET_INFO_LENGTH;
pub const SET_INFO_CLASS: u64 = IOPB_PARAMETERS + FP_SET_INFO_CLASS;
pub const SET_INFO_BUFFER: u64 = IOPB_PARAMETERS + FP_SET_INFO_BUFFER;
pub const WRITE_LENGTH: u64 = IOPB_PARAMETERS + FP_WRITE_LENGTH;
