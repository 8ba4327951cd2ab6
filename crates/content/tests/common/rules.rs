//! Rule texts shared by the bundle tests.

#![allow(dead_code, reason = "each user takes a different subset")]

/// A rule every schema-valid bundle may carry.
pub const GOOD: &str = "title: Whoami
id: 11111111-0000-0000-0000-000000000001
level: high
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: '\\whoami.exe'
    condition: selection
";

/// Line 9 names `TerminalSessionId`, which ringside does not provide (the
/// 21-versus-20 defect): compiling it gives `BundleError::Rejected`.
pub const BAD: &str = "title: Whoami in session 1
id: 11111111-0000-0000-0000-000000000002
level: high
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        TerminalSessionId: 1
        Image|endswith: '\\whoami.exe'
    condition: selection
";
