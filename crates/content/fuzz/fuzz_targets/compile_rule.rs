//! Fuzzes the Sigma compiler: any bytes must compile or be rejected, never
//! panic; an accepted rule must also evaluate without panicking.
//! Seeds: `cargo run --example gen_fuzz_seeds` style generation is done by
//! `seeds.sh`, which writes generated YAML (not SigmaHQ copies) to corpus/.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringside_content::Engine;
use ringside_content::compile::compile_rule;
use ringside_content::schema::{Logsource, OwnedEvent};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(rule) = compile_rule(text, std::path::Path::new("fuzz.yml")) {
        let logsource = rule.logsource;
        let engine = Engine::new(vec![rule]);
        let mut event = OwnedEvent::empty(logsource);
        for (i, value) in event.values.iter_mut().enumerate() {
            *value = Some(format!("C:\\Windows\\x{i}.exe -a /b {text:.40}"));
        }
        let _ = engine.evaluate(&event);
        let _ = Logsource::ALL;
    }
});
