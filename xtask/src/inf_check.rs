//! Linux-side checks of the INF that `cargo xtask package` ships: the
//! sections and keys a primitive file-system minifilter INF needs, checked
//! against the files actually in the package directory.
//!
//! This complements, and is no substitute for, `infverif /w` on a Windows
//! host with the WDK (Makefile.toml's `infverif` task): infverif knows every
//! INF rule; this check knows ringside's own invariants (service name =
//! binary name, test altitude range, files present) and runs on every
//! `cargo xtask package`, on any host.

use std::collections::HashMap;
use std::path::Path;

/// SERVICE_FILE_SYSTEM_DRIVER.
const SERVICE_FILE_SYSTEM_DRIVER: u32 = 2;
/// SERVICE_BOOT_START and SERVICE_ERROR_NORMAL (winnt.h).
const SERVICE_BOOT_START: u32 = 0;
const SERVICE_ERROR_NORMAL: u32 = 1;
/// The FSFilter Activity Monitor load order group's altitude range. A test
/// build uses a value in it; production needs an altitude allocated by
/// Microsoft.
pub const ACTIVITY_MONITOR_ALTITUDES: (u32, u32) = (360_000, 389_999);
const ACTIVITY_MONITOR_CLASS_GUID: &str = "{b86dff51-a31e-4bac-b3cf-e8cfe75c9fc2}";
const INSTALL: &str = "defaultinstall.ntamd64";
const SERVICES: &str = "defaultinstall.ntamd64.services";

/// What a valid INF declares (used by the guide check too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfFacts {
    pub service_name: String,
    pub binary: String,
    pub altitude: u32,
    pub instance_name: String,
    pub catalog: String,
}

/// A parsed INF: lower-cased section name -> lines (already %string%-expanded).
#[derive(Debug)]
pub struct Inf {
    sections: HashMap<String, Vec<String>>,
}

/// Removes a `;` comment that is not inside double quotes.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// One INF field: quotes removed (adjacent quoted and unquoted parts join).
fn unquote(field: &str) -> String {
    field.trim().replace('"', "")
}

/// Splits on commas outside quotes; each field unquoted and trimmed.
pub fn fields(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(unquote(&value[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(unquote(&value[start..]));
    out
}

impl Inf {
    pub fn parse(text: &str) -> Inf {
        let mut raw: HashMap<String, Vec<String>> = HashMap::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            let line = strip_comment(line).trim();
            if line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let name = name.trim().to_ascii_lowercase();
                raw.entry(name.clone()).or_default();
                current = Some(name);
            } else if let Some(section) = &current {
                raw.entry(section.clone())
                    .or_default()
                    .push(line.to_string());
            }
        }
        // %key% substitution from [Strings] (keys are case-insensitive;
        // %13% and other DIRIDs are not string keys and stay as they are).
        let strings: HashMap<String, String> = raw
            .get("strings")
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), unquote(v)))
                    .collect()
            })
            .unwrap_or_default();
        let expand = |line: &str| {
            let mut out = String::new();
            let mut rest = line;
            while let Some(start) = rest.find('%') {
                out.push_str(&rest[..start]);
                let after = &rest[start + 1..];
                match after.find('%') {
                    Some(end) => {
                        let key = &after[..end];
                        match strings.get(&key.to_ascii_lowercase()) {
                            Some(value) => out.push_str(value),
                            None => {
                                out.push('%');
                                out.push_str(key);
                                out.push('%');
                            }
                        }
                        rest = &after[end + 1..];
                    }
                    None => {
                        out.push_str(&rest[start..]);
                        rest = "";
                    }
                }
            }
            out.push_str(rest);
            out
        };
        let sections = raw
            .into_iter()
            .map(|(name, lines)| {
                let lines = if name == "strings" {
                    lines
                } else {
                    lines.iter().map(|l| expand(l)).collect()
                };
                (name, lines)
            })
            .collect();
        Inf { sections }
    }

    pub fn section(&self, name: &str) -> Option<&[String]> {
        self.sections
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
    }

    /// Values of `key = value` entries in `section` (key case-insensitive).
    pub fn values(&self, section: &str, key: &str) -> Vec<String> {
        self.section(section)
            .unwrap_or_default()
            .iter()
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    pub fn value(&self, section: &str, key: &str) -> Option<String> {
        self.values(section, key).into_iter().next()
    }
}

/// Checks `inf_text` (the INF being shipped) against the files in
/// `package_dir`; the error lists every problem, each naming the section
/// and key and what to change.
pub fn check(inf_text: &str, package_dir: &Path) -> Result<InfFacts, String> {
    let present = |name: &str| package_dir.join(name).is_file();
    check_with(inf_text, &present).map_err(|problems| {
        format!(
            "INF check failed for ringside.inf:\n  - {}",
            problems.join("\n  - ")
        )
    })
}

/// [`check`] with the package's file list abstracted (for tests).
pub fn check_with(inf_text: &str, present: &dyn Fn(&str) -> bool) -> Result<InfFacts, Vec<String>> {
    let inf = Inf::parse(inf_text);
    let mut problems = Vec::new();
    let mut require = |ok: bool, message: String| {
        if !ok {
            problems.push(message);
        }
    };

    // [Version]
    require(
        inf.section("Version").is_some(),
        "missing [Version] section".into(),
    );
    let version = |key: &str| inf.value("Version", key).map(|v| unquote(&v));
    require(
        version("Signature").is_some_and(|s| s.eq_ignore_ascii_case("$WINDOWS NT$")),
        "[Version] Signature must be \"$WINDOWS NT$\"".into(),
    );
    require(
        version("Class").is_some_and(|c| c.eq_ignore_ascii_case("ActivityMonitor")),
        "[Version] Class must be ActivityMonitor (an activity-monitor minifilter)".into(),
    );
    require(
        version("ClassGuid").is_some_and(|g| g.eq_ignore_ascii_case(ACTIVITY_MONITOR_CLASS_GUID)),
        format!("[Version] ClassGuid must be {ACTIVITY_MONITOR_CLASS_GUID} (ActivityMonitor)"),
    );
    require(
        version("Provider").is_some_and(|p| !p.is_empty()),
        "[Version] Provider is missing".into(),
    );
    let driver_ver_ok = version("DriverVer").is_some_and(|v| {
        let parts = fields(&v);
        let date_ok = parts.first().is_some_and(|d| {
            let n: Vec<_> = d.split('/').collect();
            n.len() == 3
                && n.iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        });
        let version_ok = parts.get(1).is_some_and(|v| {
            let n: Vec<_> = v.split('.').collect();
            n.len() == 4 && n.iter().all(|p| p.parse::<u16>().is_ok())
        });
        date_ok && version_ok
    });
    require(
        driver_ver_ok,
        "[Version] DriverVer must be `mm/dd/yyyy,w.x.y.z`".into(),
    );
    let catalog = version("CatalogFile").unwrap_or_default();
    require(
        catalog.to_ascii_lowercase().ends_with(".cat"),
        "[Version] CatalogFile must name a .cat (inf2cat creates it on Windows)".into(),
    );
    require(
        version("PnpLockdown").as_deref() == Some("1"),
        "[Version] PnpLockdown must be 1 (protects the driver files after install)".into(),
    );

    // [DefaultInstall.NTAMD64] CopyFiles, each section going to DIRID 13.
    require(
        inf.section(INSTALL).is_some(),
        "missing [DefaultInstall.NTAMD64] section".into(),
    );
    let copy_sections: Vec<String> = inf
        .values(INSTALL, "CopyFiles")
        .iter()
        .flat_map(|v| fields(v))
        .filter(|s| !s.is_empty())
        .collect();
    require(
        !copy_sections.is_empty(),
        "[DefaultInstall.NTAMD64] has no CopyFiles".into(),
    );
    let default_dest = inf
        .value("DestinationDirs", "DefaultDestDir")
        .map(|v| fields(&v).remove(0));
    let mut copied = Vec::new();
    let mut missing_sections = Vec::new();
    for section in &copy_sections {
        let (dirid, files) = match section.strip_prefix('@') {
            // `CopyFiles = @file` copies one file to DefaultDestDir.
            Some(file) => (default_dest.clone(), vec![file.to_string()]),
            None => (
                inf.value("DestinationDirs", section)
                    .map(|v| fields(&v).remove(0))
                    .or_else(|| default_dest.clone()),
                match inf.section(section) {
                    Some(lines) => lines.iter().map(|l| fields(l).remove(0)).collect(),
                    None => {
                        missing_sections.push(section.clone());
                        Vec::new()
                    }
                },
            ),
        };
        require(
            dirid.as_deref() == Some("13"),
            format!(
                "[DestinationDirs] must send CopyFiles section `{section}` to DIRID 13 (the driver store: primitive \
                 drivers run from there), found {}",
                dirid.as_deref().unwrap_or("no entry")
            ),
        );
        copied.extend(files);
    }
    for section in &missing_sections {
        require(
            false,
            format!("CopyFiles names section `[{section}]`, which does not exist"),
        );
    }

    // [SourceDisksFiles] and the package contents.
    let source_files: Vec<String> = inf
        .section("SourceDisksFiles")
        .unwrap_or_default()
        .iter()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
        .collect();
    for file in &copied {
        require(
            source_files.iter().any(|s| s.eq_ignore_ascii_case(file)),
            format!("`{file}` is copied but not listed in [SourceDisksFiles]"),
        );
    }
    for file in &source_files {
        require(
            present(file),
            format!("[SourceDisksFiles] lists `{file}`, which is not in the package directory"),
        );
    }

    // [DefaultInstall.NTAMD64.Services] AddService = name,flags,section
    let add_service = inf.value(SERVICES, "AddService").map(|v| fields(&v));
    require(
        add_service.is_some(),
        "[DefaultInstall.NTAMD64.Services] has no AddService".into(),
    );
    let add_service = add_service.unwrap_or_default();
    let service_name = add_service.first().cloned().unwrap_or_default();
    let service_section = add_service.get(2).cloned().unwrap_or_default();
    let binaries: Vec<&String> = copied
        .iter()
        .filter(|f| f.to_ascii_lowercase().ends_with(".sys"))
        .collect();
    let binary = binaries.first().map(|s| s.to_string()).unwrap_or_default();
    require(
        !binary.is_empty(),
        "no .sys file is copied by [DefaultInstall.NTAMD64] CopyFiles".into(),
    );
    let stem = binary
        .strip_suffix(".sys")
        .or_else(|| binary.strip_suffix(".SYS"))
        .unwrap_or(&binary);
    require(
        service_name.eq_ignore_ascii_case(stem),
        format!(
            "AddService name `{service_name}` must match the binary `{binary}` (service `{stem}`: fltmc, sc and the \
             guide use that name)"
        ),
    );
    require(
        inf.section(&service_section).is_some(),
        format!("AddService names service section `{service_section}`, which does not exist"),
    );

    // The service install section.
    let svc = |key: &str| inf.value(&service_section, key).map(|v| unquote(&v));
    let number = |key: &str| svc(key).and_then(|v| parse_number(&v));
    require(
        number("ServiceType") == Some(SERVICE_FILE_SYSTEM_DRIVER),
        format!("[{service_section}] ServiceType must be 2 (SERVICE_FILE_SYSTEM_DRIVER)"),
    );
    // A sensor must run after a reboot: boot start, with the FSFilter
    // Activity Monitor group (checked below), as Microsoft documents for
    // file system filters that load at startup.
    require(
        number("StartType") == Some(SERVICE_BOOT_START),
        format!(
            "[{service_section}] StartType must be 0 (SERVICE_BOOT_START): a sensor must be running after a reboot"
        ),
    );
    // And a failed load must not stop the boot.
    require(
        number("ErrorControl").is_some_and(|v| v <= SERVICE_ERROR_NORMAL),
        format!(
            "[{service_section}] ErrorControl must be 0 or 1: a boot-start sensor that fails to load must not stop the boot"
        ),
    );
    require(
        svc("LoadOrderGroup").is_some_and(|g| g.eq_ignore_ascii_case("FSFilter Activity Monitor")),
        format!("[{service_section}] LoadOrderGroup must be \"FSFilter Activity Monitor\""),
    );
    let expected_binary = format!("%13%\\{binary}");
    require(
        svc("ServiceBinary").is_some_and(|b| b.eq_ignore_ascii_case(&expected_binary)),
        format!(
            "[{service_section}] ServiceBinary must be {expected_binary} (the copied binary, in the driver store), found {}",
            svc("ServiceBinary").unwrap_or_else(|| "none".into())
        ),
    );

    // AddReg: Instances\DefaultInstance, Instances\<name>\Altitude and Flags.
    let add_reg: Vec<String> = inf
        .values(&service_section, "AddReg")
        .iter()
        .flat_map(|v| fields(v))
        .filter(|s| !s.is_empty())
        .collect();
    require(
        !add_reg.is_empty(),
        format!("[{service_section}] has no AddReg (the minifilter instance keys)"),
    );
    let entries: Vec<Vec<String>> = add_reg
        .iter()
        .flat_map(|s| {
            inf.section(s)
                .unwrap_or_default()
                .iter()
                .map(|l| fields(l))
                .collect::<Vec<_>>()
        })
        .collect();
    let reg = |subkey: &str, value: &str| {
        entries
            .iter()
            .find(|e| {
                e.first().is_some_and(|r| r.eq_ignore_ascii_case("HKR"))
                    && e.get(1).is_some_and(|k| k.eq_ignore_ascii_case(subkey))
                    && e.get(2).is_some_and(|v| v.eq_ignore_ascii_case(value))
            })
            .and_then(|e| e.get(4).cloned())
    };
    let instance_name = reg("Instances", "DefaultInstance");
    require(
        instance_name.is_some(),
        "AddReg has no HKR,\"Instances\",\"DefaultInstance\" entry (FltMgr attaches no instance without it)".into(),
    );
    let instance_name = instance_name.unwrap_or_default();
    let instance_key = format!("Instances\\{instance_name}");
    let altitude = reg(&instance_key, "Altitude");
    require(
        altitude.is_some(),
        format!("AddReg has no HKR,\"{instance_key}\",\"Altitude\" entry for the default instance"),
    );
    let altitude_value = altitude
        .as_deref()
        .and_then(|a| a.parse::<u32>().ok())
        .unwrap_or(0);
    if altitude.is_some() {
        let (low, high) = ACTIVITY_MONITOR_ALTITUDES;
        require(
            (low..=high).contains(&altitude_value),
            format!(
                "altitude `{}` is outside {low}..={high}, the FSFilter Activity Monitor range this test build must use \
                 (production needs a Microsoft-allocated altitude)",
                altitude.as_deref().unwrap_or_default()
            ),
        );
    }
    require(
        reg(&instance_key, "Flags").is_some(),
        format!("AddReg has no HKR,\"{instance_key}\",\"Flags\" entry for the default instance"),
    );

    // Primitive drivers (Windows 10 1903+): DefaultUninstall only with LegacyUninstall=1.
    if inf.section("DefaultUninstall.NTAMD64").is_some() {
        require(
            inf.value("DefaultUninstall.NTAMD64", "LegacyUninstall").as_deref() == Some("1"),
            "[DefaultUninstall.NTAMD64] is only allowed with LegacyUninstall = 1 (primitive driver rules)".into(),
        );
    }

    if problems.is_empty() {
        Ok(InfFacts {
            service_name,
            binary,
            altitude: altitude_value,
            instance_name,
            catalog,
        })
    } else {
        Err(problems)
    }
}

fn parse_number(text: &str) -> Option<u32> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../inf/ringside.inf");

    fn in_package(name: &str) -> bool {
        name == "ringside.sys"
    }

    fn problems(inf: &str) -> Vec<String> {
        match check_with(inf, &in_package) {
            Ok(_) => Vec::new(),
            Err(p) => p,
        }
    }

    /// `SHIPPED` with `from` replaced by `to`, asserting the edit applied.
    fn broken(from: &str, to: &str) -> String {
        assert!(
            SHIPPED.contains(from),
            "test fixture: `{from}` is not in inf/ringside.inf"
        );
        SHIPPED.replace(from, to)
    }

    fn assert_rejected(inf: &str, expected: &str) {
        let found = problems(inf);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "expected a problem containing `{expected}`, got {found:?}"
        );
    }

    #[test]
    fn accepts_the_shipped_inf() {
        let facts = check_with(SHIPPED, &in_package).unwrap();
        assert_eq!(facts.service_name, "ringside");
        assert_eq!(facts.binary, "ringside.sys");
        assert_eq!(facts.catalog, "ringside.cat");
        assert!((360_000..=389_999).contains(&facts.altitude));
    }

    #[test]
    fn rejects_a_missing_default_instance() {
        let inf = broken(
            "HKR,\"Instances\",\"DefaultInstance\",0x00000000,%DefaultInstance%\n",
            "",
        );
        assert_rejected(&inf, "\"DefaultInstance\" entry");
    }

    #[test]
    fn rejects_a_missing_altitude_and_flags() {
        assert_rejected(
            &broken("\"Altitude\",", "\"Altitud\","),
            "\"Altitude\" entry",
        );
        assert_rejected(&broken("\"Flags\",", "\"Flag\","), "\"Flags\" entry");
    }

    #[test]
    fn rejects_an_altitude_out_of_range() {
        assert_rejected(
            &broken(
                "Instance1.Altitude = \"385201\"",
                "Instance1.Altitude = \"320000\"",
            ),
            "altitude `320000` is outside",
        );
        assert_rejected(
            &broken(
                "Instance1.Altitude = \"385201\"",
                "Instance1.Altitude = \"390000\"",
            ),
            "altitude `390000` is outside",
        );
    }

    #[test]
    fn rejects_a_wrong_service_binary() {
        assert_rejected(
            &broken(
                "ServiceBinary    = %13%\\ringside.sys",
                "ServiceBinary    = %12%\\ringside.sys",
            ),
            "ServiceBinary must be %13%\\ringside.sys",
        );
        assert_rejected(
            &broken(
                "ServiceBinary    = %13%\\ringside.sys",
                "ServiceBinary    = %13%\\other.sys",
            ),
            "ServiceBinary must be",
        );
    }

    #[test]
    fn rejects_a_missing_dirid_13() {
        assert_rejected(
            &broken("ringside.DriverFiles = 13", "ringside.DriverFiles = 12"),
            "DIRID 13",
        );
        assert_rejected(&broken("ringside.DriverFiles = 13", ""), "DIRID 13");
    }

    #[test]
    fn rejects_a_service_name_that_is_not_the_binary_name() {
        assert_rejected(
            &broken(
                "ServiceName        = \"ringside\"",
                "ServiceName        = \"ringsensor\"",
            ),
            "AddService name `ringsensor`",
        );
    }

    #[test]
    fn rejects_version_and_service_section_mistakes() {
        assert_rejected(&broken("PnpLockdown = 1", "PnpLockdown = 0"), "PnpLockdown");
        assert_rejected(
            &broken(
                "Class       = \"ActivityMonitor\"",
                "Class       = \"AntiVirus\"",
            ),
            "Class must be ActivityMonitor",
        );
        assert_rejected(
            &broken("ServiceType      = 2", "ServiceType      = 1"),
            "ServiceType must be 2",
        );
        assert_rejected(
            &broken("StartType        = 0", "StartType        = 3"),
            "StartType must be 0",
        );
        assert_rejected(
            &broken("ErrorControl     = 1", "ErrorControl     = 3"),
            "ErrorControl must be 0 or 1",
        );
        assert_rejected(
            &broken(
                "LoadOrderGroup   = \"FSFilter Activity Monitor\"",
                "LoadOrderGroup   = \"FSFilter Anti-Virus\"",
            ),
            "LoadOrderGroup",
        );
        assert_rejected(
            &broken("LegacyUninstall = 1", "LegacyUninstall = 0"),
            "LegacyUninstall",
        );
    }

    #[test]
    fn rejects_files_missing_from_the_package() {
        let found = check_with(SHIPPED, &|_| false).unwrap_err();
        assert!(
            found
                .iter()
                .any(|p| p.contains("`ringside.sys`, which is not in the package directory")),
            "{found:?}"
        );
    }

    #[test]
    fn comments_and_quotes_are_handled() {
        assert_eq!(strip_comment("a = \"x;y\" ; comment"), "a = \"x;y\" ");
        assert_eq!(
            fields("HKR,\"Instances\\\"ringside Instance,\"Altitude\",0x0,\"385201\""),
            vec![
                "HKR",
                "Instances\\ringside Instance",
                "Altitude",
                "0x0",
                "385201"
            ]
        );
    }
}
