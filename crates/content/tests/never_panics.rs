//! The compiler never panics, whatever the input: random YAML-ish text and
//! random mutations of a valid rule must give `Ok` or a `Rejection`.

use proptest::prelude::*;
use ringside_content::compile::compile_rule;
use std::path::Path;

const RULE: &str = "title: t\nid: x\nlogsource:\n    product: windows\n    category: process_creation\ndetection:\n    selection:\n        Image|endswith: '\\\\a.exe'\n        CommandLine|contains|all:\n            - ' -x'\n            - 'y*z?'\n    filter:\n        User|re: '^a.*'\n    condition: selection and not filter\n";

fn yamlish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "title: ", "detection:", "condition: ", "logsource:", "product: windows", "category: process_creation",
        "selection", "1 of ", "all of them", " and ", " or not ", "(", ")", "|contains", "|re", "|all", "|base64offset",
        "|windash", "|cidr", "|gt", "Image", "CommandLine", "- ", ": ", "\n", "    ", "'", "\"", "*", "?", "\\", "[", "]",
        "{", "}", "&a", "*a", "null", "true", "1", "~", "#", "|", "---\n",
    ]);
    prop::collection::vec(atoms, 0..60).prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn yamlish_text_never_panics(text in yamlish()) {
        let _ = compile_rule(&text, Path::new("fuzz.yml"));
    }

    #[test]
    fn mutated_rules_never_panic(position in 0usize..RULE.len(), insert in "\\PC{0,8}", cut in 0usize..8) {
        let mut text: String = RULE.chars().take(position).collect();
        text.push_str(&insert);
        text.extend(RULE.chars().skip(position + cut));
        if let Err(rejection) = compile_rule(&text, Path::new("fuzz.yml")) {
            // Every rejection points at a line of the input.
            prop_assert!(rejection.line >= 1 && rejection.line <= text.lines().count().max(1) + 1, "{rejection}");
        }
    }
}

#[test]
fn the_seed_rule_compiles() {
    assert!(compile_rule(RULE, Path::new("seed.yml")).is_ok());
}
