//! `ringside-agent service install|uninstall|run`: the agent as a Windows
//! service (via the `windows-service` crate), running the device source
//! until the Service Control Manager stops it.

use std::ffi::OsString;
use std::time::Duration;

use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use std::sync::OnceLock;

use crate::cli::{ServiceAction, ServiceRunArgs};
use crate::source::device::StopFlag;

/// The service name.
pub const SERVICE_NAME: &str = "RingsideAgent";

/// Carries out `action`.
pub fn dispatch(action: ServiceAction) -> windows_service::Result<()> {
    match action {
        ServiceAction::Install(args) => install(&args),
        ServiceAction::Uninstall => uninstall(),
        ServiceAction::Run(args) => {
            // The dispatcher calls `service_main` on its own thread with the
            // StartService arguments only; ours came on the command line.
            let _ = RUN_ARGS.set(args);
            service_dispatcher::start(SERVICE_NAME, ffi_service_main)
        }
    }
}

/// `service run`'s options, for `service_main`.
static RUN_ARGS: OnceLock<ServiceRunArgs> = OnceLock::new();

fn install(args: &ServiceRunArgs) -> windows_service::Result<()> {
    let manager =
        ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CREATE_SERVICE)?;
    let executable = std::env::current_exe().map_err(windows_service::Error::Winapi)?;
    let info = ServiceInfo {
        name: OsString::from(SERVICE_NAME),
        display_name: OsString::from("ringside agent"),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: executable,
        launch_arguments: args.run_arguments(),
        dependencies: vec![],
        account_name: None, // LocalSystem: the device admits SYSTEM and Administrators.
        account_password: None,
    };
    manager.create_service(&info, ServiceAccess::QUERY_STATUS)?;
    Ok(())
}

fn uninstall() -> windows_service::Result<()> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)?;
    let service = manager.open_service(SERVICE_NAME, ServiceAccess::DELETE)?;
    service.delete()
}

define_windows_service!(ffi_service_main, service_main);

fn service_main(_arguments: Vec<OsString>) {
    if let Err(error) = run_service() {
        eprintln!("ringside-agent service: {error}");
    }
}

fn status(state: ServiceState, accept: ServiceControlAccept) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: ServiceExitCode::Win32(0),
        checkpoint: 0,
        wait_hint: Duration::from_secs(5),
        process_id: None,
    }
}

fn run_service() -> windows_service::Result<()> {
    let stop = StopFlag::default();
    let handler_stop = stop.clone();
    let handle = service_control_handler::register(SERVICE_NAME, move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            handler_stop.stop();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    })?;
    handle.set_service_status(status(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
    ))?;
    // Events go to a rotated file next to the executable's data directory.
    let output = crate::cli::OutputArgs {
        output: format!(
            "file:{}",
            std::env::var("ProgramData").unwrap_or_else(|_| r"C:\ProgramData".into())
                + r"\ringside\events.jsonl"
        ),
        rotate_bytes: 100 * 1024 * 1024,
        keep: 5,
    };
    let enrich = crate::cli::EnrichArgs {
        no_enrich: false,
        hashes: "md5,sha256,imphash".into(),
        files_root: None,
        machine_id: None,
    };
    let result = (|| -> Result<(), String> {
        let config = crate::cli::pipeline_config(&enrich).map_err(|e| e.to_string())?;
        let sysmon = RUN_ARGS.get().map(|a| a.sysmon.clone()).unwrap_or_default();
        let mut pipeline =
            crate::cli::pipeline_with_config(config, &sysmon, true).map_err(|e| e.to_string())?;
        if let Some(args) = RUN_ARGS.get() {
            crate::cli::attach_rules(&mut pipeline, &args.rules, args.rules_poll)
                .map_err(|e| e.to_string())?;
        }
        let mut sink = crate::cli::open_sink(&output).map_err(|e| e.to_string())?;
        crate::source::device::run(pipeline, sink.as_mut(), None, &stop).map_err(|e| e.to_string())
    })();
    let code = if result.is_ok() { 0 } else { 1 };
    let mut stopped = status(ServiceState::Stopped, ServiceControlAccept::empty());
    stopped.exit_code = ServiceExitCode::Win32(code);
    handle.set_service_status(stopped)
}
