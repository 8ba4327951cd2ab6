//! docs/windows-vm.md and tools/windows/*.ps1 against the package: every
//! command a VM user copies must name the real service, binary, INF,
//! device path and altitude. Names come from inf/ringside.inf (through
//! `inf_check`), `ringside_wire::ioctl::DOS_DEVICE_PATH` and the package
//! directory, never from this file.

use std::path::Path;

use crate::inf_check::InfFacts;

/// The commands in the guide's code blocks (4-space indented lines).
fn command_lines(guide: &str) -> Vec<&str> {
    guide
        .lines()
        .filter(|l| l.starts_with("    "))
        .map(str::trim)
        .collect()
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace()
        .map(|w| {
            w.trim_matches(|c| c == '`' || c == ',' || c == '"')
                .to_string()
        })
        .collect()
}

/// Checks the guide text; `agent_service` is the agent's service name.
pub fn check_guide(
    guide: &str,
    inf: &InfFacts,
    inf_file: &str,
    device_path: &str,
    agent_service: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    let service = inf.service_name.as_str();
    let agent_service = agent_service.to_ascii_lowercase();
    for line in command_lines(guide) {
        let w = words(line);
        let lower: Vec<String> = w.iter().map(|s| s.to_ascii_lowercase()).collect();
        let at = |i: usize| lower.get(i).map(String::as_str).unwrap_or("");
        match (at(0), at(1)) {
            ("fltmc", "load" | "unload") if at(2) != service => {
                problems.push(format!("`{line}`: the filter is `{service}`"));
            }
            ("fltmc", "instances") if at(2) == "-f" && at(3) != service => {
                problems.push(format!("`{line}`: the filter is `{service}`"));
            }
            ("sc", "query" | "qc" | "start" | "stop")
                if at(2) != service && at(2) != agent_service =>
            {
                problems.push(format!(
                    "`{line}`: the services are `{service}` and `{agent_service}`"
                ));
            }
            ("pnputil", "/add-driver") if !at(2).ends_with(inf_file) => {
                problems.push(format!("`{line}`: the INF is `{inf_file}`"));
            }
            (".reload", "/f") if at(2) != inf.binary => {
                problems.push(format!("`{line}`: the binary is `{}`", inf.binary));
            }
            _ => {}
        }
        if at(0) == "verifier" {
            for word in lower.iter().filter(|w| w.ends_with(".sys")) {
                if *word != inf.binary {
                    problems.push(format!(
                        "`{line}`: Driver Verifier must name `{}`",
                        inf.binary
                    ));
                }
            }
        }
        if lower.iter().any(|w| w.contains("installhinfsection"))
            && !lower.last().is_some_and(|w| w.ends_with(inf_file))
        {
            problems.push(format!("`{line}`: the INF is `{inf_file}`"));
        }
    }
    // Device paths anywhere in the text.
    for (at, _) in guide.match_indices("\\\\.\\") {
        let path: String = guide[at..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '`' && *c != ')')
            .collect();
        if path != device_path {
            problems.push(format!(
                "device path `{path}`: the control device is `{device_path}`"
            ));
        }
    }
    if !guide.contains(device_path) {
        problems.push(format!(
            "the guide never names the control device `{device_path}`"
        ));
    }
    // Altitudes: any number in the minifilter altitude neighbourhood must be
    // the INF's altitude or a bound of the documented range.
    let (low, high) = crate::inf_check::ACTIVITY_MONITOR_ALTITUDES;
    for token in guide.split(|c: char| !c.is_ascii_digit()) {
        if let Ok(n) = token.parse::<u32>() {
            if (300_000..=429_999).contains(&n) && n != inf.altitude && n != low && n != high {
                problems.push(format!(
                    "altitude-like number {n}: the INF's altitude is {}",
                    inf.altitude
                ));
            }
        }
    }
    if !guide.contains(&inf.altitude.to_string()) {
        problems.push(format!(
            "the guide never states the altitude {}",
            inf.altitude
        ));
    }
    if !guide.contains(&format!("`{}`", inf.instance_name)) {
        problems.push(format!(
            "the guide never names the instance `{}`",
            inf.instance_name
        ));
    }
    problems
}

/// Package files the guide names must exist (those a Linux build makes).
pub fn check_package_files(guide: &str, package: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for name in ["ringside.sys", "ringside.pdb", "ringside.inf"] {
        if !guide.contains(name) {
            problems.push(format!("the guide never names `{name}`"));
        }
        if !package.join(name).is_file() {
            problems.push(format!(
                "`{name}` is named by the guide but missing from {}",
                package.display()
            ));
        }
    }
    problems
}

/// Structural checks of a PowerShell script (no pwsh on this machine).
pub fn check_powershell(name: &str, text: &str, service: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut say = |ok: bool, what: &str| {
        if !ok {
            problems.push(format!("{name}: {what}"));
        }
    };
    say(
        text.starts_with("#Requires -RunAsAdministrator"),
        "must start with #Requires -RunAsAdministrator",
    );
    say(
        text.contains("[CmdletBinding()]"),
        "needs [CmdletBinding()]",
    );
    for keyword in [".SYNOPSIS", ".DESCRIPTION", ".EXAMPLE"] {
        say(
            text.contains(keyword),
            &format!("comment-based help lacks {keyword}"),
        );
    }
    // Every declared parameter is documented.
    if let Some(start) = text.find("param(") {
        let block = &text[start..text[start..].find("\n)").map_or(text.len(), |e| start + e)];
        // Declared parameters are typed: `[string]$Name`, `[switch]$Name`.
        for (at, _) in block.match_indices("]$") {
            let at = at + 1;
            let param: String = block[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            say(
                text.contains(&format!(".PARAMETER {param}")),
                &format!("parameter ${param} has no .PARAMETER help"),
            );
        }
    } else {
        say(false, "has no param( ) block");
    }
    // Balanced delimiters outside strings and comments.
    let mut stack = Vec::new();
    let mut balanced = true;
    let mut in_block_comment = false;
    for line in text.lines() {
        let mut chars = line.chars().peekable();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            if in_block_comment {
                if c == '#' && chars.peek() == Some(&'>') {
                    chars.next();
                    in_block_comment = false;
                }
                continue;
            }
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) if c == '`' => {
                    chars.next();
                }
                Some(_) => {}
                None => match c {
                    '\'' | '"' => quote = Some(c),
                    '<' if chars.peek() == Some(&'#') => {
                        chars.next();
                        in_block_comment = true;
                    }
                    '#' => break,
                    '(' | '{' | '[' => stack.push(c),
                    ')' | '}' | ']' => {
                        let open = match c {
                            ')' => '(',
                            '}' => '{',
                            _ => '[',
                        };
                        if stack.pop() != Some(open) {
                            balanced = false;
                        }
                    }
                    _ => {}
                },
            }
        }
        if quote.is_some() {
            balanced = false;
        }
    }
    say(
        balanced && stack.is_empty() && !in_block_comment,
        "unbalanced (), {} or [] or an unterminated string",
    );
    // Only commands that exist on Windows 10/11 (cmdlets and executables).
    const KNOWN: &[&str] = &[
        "Get-Service",
        "Stop-Service",
        "Import-Certificate",
        "Test-Path",
        "Join-Path",
        "Write-Output",
        "Write-Warning",
        "New-Object",
        "Out-Null",
        "Get-Date",
        "New-Item",
        "Out-File",
        "Get-ChildItem",
        "Sort-Object",
        "Select-Object",
        "Copy-Item",
        "Compress-Archive",
        "Save-Output",
    ];
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        let is_cmdlet = word.split_once('-').is_some_and(|(verb, noun)| {
            verb.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && noun.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && verb.chars().all(|c| c.is_ascii_alphabetic())
        });
        if is_cmdlet && !KNOWN.contains(&word) {
            problems.push(format!("{name}: unknown command `{word}` (add it to the list only if it exists on Windows 10)"));
        }
    }
    for exe in ["fltmc", "pnputil", "sc", "verifier", "reg", "bcdedit"] {
        for (at, _) in text.match_indices(&format!("{exe}.exe ")) {
            let rest: Vec<&str> = text[at..]
                .lines()
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            if matches!(exe, "fltmc")
                && matches!(rest.get(1), Some(&"load" | &"unload"))
                && rest.get(2) != Some(&service)
            {
                problems.push(format!(
                    "{name}: `{}` must name the filter `{service}`",
                    rest.join(" ")
                ));
            }
        }
    }
    problems
}

/// All guide and script checks against the package directory.
/// The agent's Windows service name, as `agent/src/service.rs` registers it
/// (read from the source so the guide cannot drift from the code).
pub fn agent_service_name(service_rs: &str) -> Result<String, String> {
    const DECLARATION: &str = "pub const SERVICE_NAME: &str = \"";
    let start = service_rs
        .find(DECLARATION)
        .map(|at| at + DECLARATION.len())
        .ok_or("agent/src/service.rs no longer declares `pub const SERVICE_NAME: &str`")?;
    let len = service_rs[start..]
        .find('"')
        .ok_or("unterminated SERVICE_NAME in agent/src/service.rs")?;
    Ok(service_rs[start..start + len].to_owned())
}

pub fn run(package: &Path) -> Result<(), String> {
    let root = crate::cmd::root();
    let read =
        |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()));
    let inf_text = read(&package.join("ringside.inf"))?;
    let inf = crate::inf_check::check(&inf_text, package)?;
    let guide = read(&root.join("docs/windows-vm.md"))?;
    let readme = read(&root.join("README.md"))?;
    let agent_service = agent_service_name(&read(&root.join("agent/src/service.rs"))?)?;
    let mut problems = check_guide(
        &guide,
        &inf,
        "ringside.inf",
        ringside_wire::ioctl::DOS_DEVICE_PATH,
        &agent_service,
    );
    problems.extend(check_package_files(&guide, package));
    if !readme.contains("(docs/windows-vm.md)") {
        problems.push("README.md does not link docs/windows-vm.md".into());
    }
    for script in ["install.ps1", "uninstall.ps1", "collect-diagnostics.ps1"] {
        let text = read(&root.join("tools/windows").join(script))?;
        problems.extend(check_powershell(script, &text, &inf.service_name));
    }
    if problems.is_empty() {
        println!(
            "guide: docs/windows-vm.md and tools/windows/*.ps1 match {}",
            package.display()
        );
        Ok(())
    } else {
        Err(format!(
            "docs/windows-vm.md or tools/windows/*.ps1 disagree with the package:\n  - {}",
            problems.join("\n  - ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUIDE: &str = include_str!("../../docs/windows-vm.md");
    const INF: &str = include_str!("../../inf/ringside.inf");
    const SCRIPTS: [(&str, &str); 3] = [
        (
            "install.ps1",
            include_str!("../../tools/windows/install.ps1"),
        ),
        (
            "uninstall.ps1",
            include_str!("../../tools/windows/uninstall.ps1"),
        ),
        (
            "collect-diagnostics.ps1",
            include_str!("../../tools/windows/collect-diagnostics.ps1"),
        ),
    ];

    fn facts() -> InfFacts {
        crate::inf_check::check_with(INF, &|_| true).unwrap()
    }

    fn guide_problems(guide: &str) -> Vec<String> {
        check_guide(
            guide,
            &facts(),
            "ringside.inf",
            ringside_wire::ioctl::DOS_DEVICE_PATH,
            &agent_service_name(include_str!("../../agent/src/service.rs")).unwrap(),
        )
    }

    #[test]
    fn the_guide_matches_the_inf_and_the_wire_contract() {
        assert_eq!(guide_problems(GUIDE), Vec::<String>::new());
    }

    #[test]
    fn the_guide_check_catches_wrong_names() {
        for (from, to, expected) in [
            (
                "fltmc load ringside",
                "fltmc load ringsensor",
                "the filter is `ringside`",
            ),
            (
                "sc query ringside\n",
                "sc query ringsensor\n",
                "the services are",
            ),
            (
                "/driver ringside.sys",
                "/driver ringsensor.sys",
                "Driver Verifier must name",
            ),
            (
                ".reload /f ringside.sys",
                ".reload /f ringside.exe",
                "the binary is",
            ),
            (
                "pnputil /add-driver ringside.inf",
                "pnputil /add-driver sensor.inf",
                "the INF is",
            ),
            (
                "| `\\\\.\\Ringside`",
                "| `\\\\.\\RingSide2`",
                "the control device is",
            ),
            (
                "altitude `385201`",
                "altitude `385202`",
                "altitude-like number 385202",
            ),
        ] {
            assert!(GUIDE.contains(from), "fixture `{from}` not in the guide");
            let found = guide_problems(&GUIDE.replacen(from, to, 1));
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "{from} -> {to}: {found:?}"
            );
        }
    }

    #[test]
    fn the_scripts_pass_the_structural_check() {
        for (name, text) in SCRIPTS {
            assert_eq!(
                check_powershell(name, text, "ringside"),
                Vec::<String>::new()
            );
        }
    }

    #[test]
    fn the_structural_check_catches_broken_scripts() {
        let (name, text) = SCRIPTS[0];
        for (from, to, expected) in [
            ("#Requires -RunAsAdministrator", "# admin", "#Requires"),
            ("[CmdletBinding()]", "", "[CmdletBinding()]"),
            (
                ".PARAMETER NoLoad",
                ".PARAM NoLoad",
                "$NoLoad has no .PARAMETER",
            ),
            (
                "Import-Certificate -FilePath",
                "Import-Certificat3 -FilePath",
                "unknown command",
            ),
            (
                "if (Test-Path $cer) {",
                "if (Test-Path $cer) {{",
                "unbalanced",
            ),
            (
                "fltmc.exe load ringside",
                "fltmc.exe load ringsid",
                "must name the filter",
            ),
        ] {
            assert!(text.contains(from), "fixture `{from}` not in {name}");
            let found = check_powershell(name, &text.replacen(from, to, 1), "ringside");
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "{from} -> {to}: {found:?}"
            );
        }
    }
}
