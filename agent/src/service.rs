//! `ringside-agent service install|uninstall|run`: the agent as a Windows
//! service (via the `windows-service` crate), running the device source
//! until the Service Control Manager stops it.
//!
//! The service depends on the driver's service (`ringside`), creates its
//! data directory (`%ProgramData%\ringside`), logs its start, stop and
//! failures to `%ProgramData%\ringside\agent.log` and to the Application
//! event log under the source `RingsideAgent`, reports STOP_PENDING with
//! growing checkpoints while it winds down, stops within
//! [`STOP_DEADLINE`], and exits with a service-specific code per failure
//! class ([`crate::service_report::FailureClass::exit_code`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceDependency, ServiceErrorControl,
    ServiceExitCode, ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{
    self, ServiceControlHandlerResult, ServiceStatusHandle,
};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use crate::cli::{ServiceAction, ServiceRunArgs};
use crate::service_report::{Failure, FailureClass, ServiceLog};
use crate::source::stop::StopFlag;
use crate::win::EventLogKind;

/// The service name, also its Application event log source.
pub const SERVICE_NAME: &str = "RingsideAgent";
/// The driver's service (`inf/ringside.inf`, AddService): the agent
/// starts after it and is stopped with it.
pub const DRIVER_SERVICE: &str = "ringside";
/// Longest a stop may take before the service reports itself stopped
/// anyway (exit code [`FailureClass::StopTimeout`]). The source notices a
/// stop within 250 ms; cancelling the READs and flushing take far less.
pub const STOP_DEADLINE: Duration = Duration::from_secs(20);
/// The wait hint of each STOP_PENDING report; a new checkpoint follows
/// well within it.
const STOP_WAIT_HINT: Duration = Duration::from_secs(3);
/// How often the supervising thread looks at the worker.
const SUPERVISE_INTERVAL: Duration = Duration::from_millis(250);

/// Application event log IDs (the failure IDs are the exit codes).
const EVENT_STARTED: u32 = 1;
const EVENT_STOPPED: u32 = 2;

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

/// `%ProgramData%\ringside`: the service's log, default events and state.
pub fn data_dir() -> PathBuf {
    PathBuf::from(std::env::var("ProgramData").unwrap_or_else(|_| r"C:\ProgramData".into()))
        .join("ringside")
}

fn install(args: &ServiceRunArgs) -> windows_service::Result<()> {
    // The service starts in System32: store paths as install saw them.
    let cwd = std::env::current_dir().map_err(windows_service::Error::Winapi)?;
    let args = args.resolved_against(&cwd);
    let manager =
        ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CREATE_SERVICE)?;
    let executable = std::env::current_exe().map_err(windows_service::Error::Winapi)?;
    let info = ServiceInfo {
        name: OsString::from(SERVICE_NAME),
        display_name: OsString::from("ringside agent"),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: executable.clone(),
        launch_arguments: args.run_arguments(),
        dependencies: vec![ServiceDependency::Service(OsString::from(DRIVER_SERVICE))],
        account_name: None, // LocalSystem: the device admits SYSTEM and Administrators.
        account_password: None,
    };
    manager.create_service(&info, ServiceAccess::QUERY_STATUS)?;
    // Without a registered source, ReportEventW still logs, but under a
    // name Event Viewer cannot attribute; the message file is the agent
    // itself (it has no message table, so viewers show the text as the
    // event's insertion string).
    crate::win::register_event_source(SERVICE_NAME, &executable)
        .map_err(windows_service::Error::Winapi)?;
    Ok(())
}

fn uninstall() -> windows_service::Result<()> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)?;
    let service = manager.open_service(SERVICE_NAME, ServiceAccess::DELETE)?;
    service.delete()?;
    // A source that was never registered (an older install) is no error.
    let _ = crate::win::unregister_event_source(SERVICE_NAME);
    Ok(())
}

define_windows_service!(ffi_service_main, service_main);

fn service_main(_arguments: Vec<OsString>) {
    let log = ServiceLog::in_dir(&data_dir());
    if let Err(error) = run_service(&log) {
        // The Service Control Manager could not be told; say it where an
        // administrator looks.
        let failure = Failure::new(
            FailureClass::Source,
            format!("cannot talk to the Service Control Manager: {error}"),
        );
        report(&log, &failure);
    }
}

/// Writes a failure to the log file and the Application event log; a
/// failure of either cannot be reported anywhere else.
fn report(log: &ServiceLog, failure: &Failure) {
    let text = failure.to_string();
    let _ = log.line(&text);
    let id = failure.class.exit_code();
    let _ = crate::win::report_event(SERVICE_NAME, EventLogKind::Error, id, &text);
}

fn note(log: &ServiceLog, id: u32, text: &str) {
    let _ = log.line(text);
    let _ = crate::win::report_event(SERVICE_NAME, EventLogKind::Information, id, text);
}

fn status(
    state: ServiceState,
    accept: ServiceControlAccept,
    checkpoint: u32,
    wait_hint: Duration,
) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: ServiceExitCode::Win32(0),
        checkpoint,
        wait_hint,
        process_id: None,
    }
}

/// How the worker ended, as the supervisor saw it.
fn supervise(
    handle: &ServiceStatusHandle,
    worker: std::thread::JoinHandle<Result<(), Failure>>,
    stop: &StopFlag,
) -> Result<(), Failure> {
    let mut checkpoint = 0u32;
    let mut stop_requested: Option<Instant> = None;
    while !worker.is_finished() {
        if stop.stopped() {
            let since = *stop_requested.get_or_insert_with(Instant::now);
            if since.elapsed() > STOP_DEADLINE {
                // The worker is left running; the process ends when
                // service_main returns and the dispatcher exits.
                return Err(Failure::new(
                    FailureClass::StopTimeout,
                    format!(
                        "the agent did not stop within {} s; its last output may be missing",
                        STOP_DEADLINE.as_secs()
                    ),
                ));
            }
            checkpoint += 1;
            let pending = status(
                ServiceState::StopPending,
                ServiceControlAccept::empty(),
                checkpoint,
                STOP_WAIT_HINT,
            );
            let _ = handle.set_service_status(pending);
        }
        std::thread::sleep(SUPERVISE_INTERVAL);
    }
    worker.join().unwrap_or_else(|_| {
        Err(Failure::new(
            FailureClass::Source,
            "the agent's worker thread panicked",
        ))
    })
}

fn run_service(log: &ServiceLog) -> windows_service::Result<()> {
    let stop = StopFlag::default();
    let handler_stop = stop.clone();
    let handle = service_control_handler::register(SERVICE_NAME, move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            // The supervisor reports STOP_PENDING within 250 ms.
            handler_stop.stop();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    })?;
    handle.set_service_status(status(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        0,
        Duration::ZERO,
    ))?;
    let args = RUN_ARGS.get().cloned();
    let worker_stop = stop.clone();
    let worker_log = log.clone();
    let result = match std::thread::Builder::new()
        .name("ringside-agent".into())
        .spawn(move || agent(args.as_ref(), &worker_stop, &worker_log))
    {
        Ok(worker) => supervise(&handle, worker, &stop),
        Err(error) => Err(Failure::new(
            FailureClass::Source,
            format!("cannot start the agent thread: {error}"),
        )),
    };
    let mut stopped = status(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        0,
        Duration::ZERO,
    );
    match &result {
        Ok(()) => note(log, EVENT_STOPPED, "ringside agent service stopped"),
        Err(failure) => {
            report(log, failure);
            stopped.exit_code = ServiceExitCode::ServiceSpecific(failure.class.exit_code());
        }
    }
    handle.set_service_status(stopped)
}

/// The agent: set up, then the device source until `stop`.
fn agent(args: Option<&ServiceRunArgs>, stop: &StopFlag, log: &ServiceLog) -> Result<(), Failure> {
    let data = data_dir();
    let output_file = args
        .and_then(|a| a.output_file.clone())
        .unwrap_or_else(|| data.join("events.jsonl"));
    let state_dir = args.and_then(|a| a.rules.state_dir.clone());
    // A fresh machine has none of these; opening the output in a missing
    // directory was the service's first act, and it stopped at once.
    for dir in [
        Some(data.clone()),
        output_file.parent().map(PathBuf::from),
        state_dir,
    ]
    .into_iter()
    .flatten()
    {
        std::fs::create_dir_all(&dir).map_err(|e| {
            Failure::new(
                FailureClass::Output,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
    }
    note(
        log,
        EVENT_STARTED,
        &format!(
            "ringside agent service started; events go to {}",
            output_file.display()
        ),
    );
    let mut outputs = vec![format!("file:{}", output_file.display())];
    outputs.extend(args.iter().flat_map(|a| a.collectors.iter().cloned()));
    let output = crate::cli::OutputArgs {
        output: outputs,
        rotate_bytes: 100 * 1024 * 1024,
        keep: 5,
        delivery: args.map(|a| a.delivery.clone()).unwrap_or_default(),
    };
    let enrich = crate::cli::EnrichArgs {
        no_enrich: false,
        hashes: "md5,sha256,imphash".into(),
        files_root: None,
        machine_id: None,
    };
    let config = crate::cli::live_config(&enrich)?;
    // A Sysmon configuration (`--config`) filters what is written.
    let sysmon = args.map(|a| a.sysmon.clone()).unwrap_or_default();
    let mut pipeline = crate::cli::pipeline_with_config(config, &sysmon, true)?;
    if let Some(args) = args {
        crate::cli::attach_rules(&mut pipeline, &args.rules, args.rules_poll)?;
    }
    let mut sink = crate::cli::open_sink(&output)?;
    crate::source::device::run(pipeline, sink.as_mut(), None, stop).map_err(|e| {
        Failure::new(
            FailureClass::Source,
            format!("{}: {e}", ringside_wire::ioctl::DOS_DEVICE_PATH),
        )
    })
}
