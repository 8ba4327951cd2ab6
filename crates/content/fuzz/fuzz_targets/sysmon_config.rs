//! Fuzzes the Sysmon configuration parser: any bytes must load or be
//! rejected with a reason, never panic; a configuration that loads must
//! also decide events of every type without panicking. Seeds: `seeds.sh`
//! writes generated configurations (not the public ones) to
//! corpus/sysmon_config/.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringside_content::sysmon_config::{FilterEvent, Scratch, Target, parse};

struct Event {
    target: Target,
    value: String,
}

impl FilterEvent for Event {
    fn target(&self) -> Option<Target> {
        Some(self.target)
    }
    fn field(&self, index: usize) -> Option<&str> {
        // Every other field absent: both the value and `-` are compared.
        (index % 2 == 0).then_some(self.value.as_str())
    }
}

fuzz_target!(|data: &[u8]| {
    let env = |name: &str| (name.len() % 2 == 0).then(|| format!("C:\\{name}"));
    let Ok(loaded) = parse::parse_bytes(data, std::path::Path::new("fuzz.xml"), &env) else {
        return;
    };
    let _ = loaded.report.to_string();
    let text = String::from_utf8_lossy(data);
    let mut scratch = Scratch::default();
    for target in Target::ALL {
        for value in [
            "C:\\Windows\\System32\\cmd.exe".to_owned(),
            String::new(),
            text.chars().take(64).collect(),
        ] {
            let event = Event { target, value };
            if let Some(decision) = loaded.config.decide(&event, &mut scratch) {
                let _ = decision.rule_name();
                let _ = decision.by.to_string();
            }
        }
        let _ = loaded.config.can_log(target);
    }
});
