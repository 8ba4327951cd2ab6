//! A Linux-side lint of `inf/ringside.inf` for what the kernel and FltMgr
//! need from a primitive minifilter INF (infverif runs on Windows via
//! Makefile.toml; this catches the mistakes that would make the driver
//! fail to load or attach before anyone reaches a Windows machine).

/// Altitudes of the "FSFilter Activity Monitor" load order group.
pub const ACTIVITY_MONITOR_ALTITUDES: std::ops::RangeInclusive<u32> = 360_000..=389_999;

/// Every problem found, or the test altitude.
pub fn check(inf: &str) -> Result<u32, Vec<String>> {
    let mut problems = Vec::new();
    let lines: Vec<String> = inf
        .lines()
        .map(|l| l.split(';').next().unwrap_or_default().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let has = |needle: &str| {
        let needle = needle.to_ascii_lowercase().replace(' ', "");
        lines
            .iter()
            .any(|l| l.to_ascii_lowercase().replace(' ', "").contains(&needle))
    };
    for (needle, why) in [
        ("Class=\"ActivityMonitor\"", "Class must be ActivityMonitor"),
        (
            "ClassGuid={b86dff51-a31e-4bac-b3cf-e8cfe75c9fc2}",
            "ClassGuid must be ActivityMonitor's",
        ),
        (
            "LoadOrderGroup=\"FSFilter Activity Monitor\"",
            "LoadOrderGroup",
        ),
        (
            "[DefaultInstall.NTAMD64]",
            "a [DefaultInstall.NTAMD64] section",
        ),
        ("[DefaultInstall.NTAMD64.Services]", "its .Services section"),
        (
            "[DefaultUninstall.NTAMD64]",
            "a [DefaultUninstall.NTAMD64] section",
        ),
        (
            "[DefaultUninstall.NTAMD64.Services]",
            "its .Services section",
        ),
        (
            "=13",
            "DestinationDirs must be 13 (DriverStore) for a primitive driver",
        ),
        (
            "ServiceBinary=%13%\\ringside.sys",
            "ServiceBinary must be %13%\\ringside.sys",
        ),
        (
            "ServiceType=2",
            "ServiceType must be 2 (SERVICE_FILE_SYSTEM_DRIVER)",
        ),
        (
            "Dependencies=\"FltMgr\"",
            "the service must depend on FltMgr",
        ),
        (
            "HKR,\"Instances\",\"DefaultInstance\"",
            "Instances\\DefaultInstance",
        ),
        ("\"Altitude\"", "an instance Altitude"),
        ("\"Flags\"", "instance Flags"),
        ("ServiceName=\"ringside\"", "service name ringside"),
        ("CatalogFile=ringside.cat", "CatalogFile"),
    ] {
        if !has(needle) {
            problems.push(format!("missing {needle}: {why}"));
        }
    }
    // FLG_ADDREG_TYPE_DWORD under FLG_ADDREG_TYPE_MASK (NOCLOBBER etc. allowed).
    let ring_size_flags = lines
        .iter()
        .find(|l| {
            l.replace(' ', "")
                .starts_with("HKR,\"Parameters\",\"RingSizeBytes\"")
        })
        .and_then(|l| l.split(',').nth(3))
        .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok());
    if ring_size_flags.is_none_or(|f| f & 0xFFFF_0001 != 0x0001_0001) {
        problems.push(
            "Parameters\\RingSizeBytes must be added as a REG_DWORD (0x00010001)".to_string(),
        );
    }
    let altitude = lines
        .iter()
        .find(|l| l.to_ascii_lowercase().starts_with("instance1.altitude"))
        .and_then(|l| l.split('=').nth(1))
        .map(|v| v.trim().trim_matches('"').to_string())
        .and_then(|v| v.parse::<u32>().ok());
    match altitude {
        Some(a) if ACTIVITY_MONITOR_ALTITUDES.contains(&a) => {}
        Some(a) => problems.push(format!(
            "altitude {a} is outside FSFilter Activity Monitor's {ACTIVITY_MONITOR_ALTITUDES:?}"
        )),
        None => problems.push("no numeric Instance1.Altitude string".to_string()),
    }
    match (problems.is_empty(), altitude) {
        (true, Some(a)) => Ok(a),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: &str = include_str!("../../inf/ringside.inf");

    #[test]
    fn the_shipped_inf_passes() {
        assert_eq!(check(INF).map_err(|p| p.join("\n")), Ok(385_201));
    }

    #[test]
    fn each_required_piece_is_checked() {
        for (from, to, needle) in [
            ("ActivityMonitor\"", "Undefined\"", "Class must be"),
            ("b86dff51", "b86dff52", "ClassGuid"),
            (
                "ringside.DriverFiles = 13",
                "ringside.DriverFiles = 12",
                "DriverStore",
            ),
            (
                "[DefaultInstall.NTAMD64.Services]",
                "[DefaultInstall.Services]",
                ".Services",
            ),
            (
                "ServiceType      = 2",
                "ServiceType      = 1",
                "ServiceType",
            ),
            ("\"385201\"", "\"425000\"", "outside"),
            (
                "0x00010003,0x00400000",
                "0x00000000,\"4194304\"",
                "REG_DWORD",
            ),
        ] {
            assert!(INF.contains(from), "fixture drifted: {from}");
            let broken = INF.replace(from, to);
            let problems = check(&broken).expect_err(needle);
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "{needle}: {problems:?}"
            );
        }
    }

    #[test]
    fn comments_do_not_count() {
        let commented = INF.replace("LoadOrderGroup   =", "; LoadOrderGroup   =");
        assert!(check(&commented).is_err());
    }
}
