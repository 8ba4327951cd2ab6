//! The offsets at which the agent reads a new process's current directory
//! (`agent/src/enrich/process_params.rs`) are x64 Windows's, by the ABI
//! oracle (tests/build.rs): Wine's winternl.h for the parameters block, and
//! Wine's and Microsoft's documented PEB for `ProcessParameters`. Nothing
//! here comes from windows-sys, whose RTL_USER_PROCESS_PARAMETERS does not
//! name `CurrentDirectory`. (`cargo xtask wine` also reads a live Wine
//! process through them.)

use ringside_agent::enrich::process_params as agent;
use ringside_kmodel::layout as oracle;

#[test]
fn the_agents_parameters_block_offsets_are_the_oracles() {
    assert_eq!(
        agent::PEB_PROCESS_PARAMETERS as u64,
        oracle::PEB_PROCESS_PARAMETERS,
        "PEB.ProcessParameters"
    );
    assert_eq!(
        agent::PARAMS_FLAGS as u64,
        oracle::PARAMS_FLAGS,
        "RTL_USER_PROCESS_PARAMETERS.Flags"
    );
    assert_eq!(
        agent::PARAMS_CURRENT_DIRECTORY as u64,
        oracle::PARAMS_CURRENT_DIRECTORY + oracle::CURDIR_DOS_PATH,
        "RTL_USER_PROCESS_PARAMETERS.CurrentDirectory.DosPath"
    );
    assert_eq!(
        agent::UNICODE_STRING_BUFFER as u64,
        oracle::US_BUFFER,
        "UNICODE_STRING.Buffer"
    );
}
