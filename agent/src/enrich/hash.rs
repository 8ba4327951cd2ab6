//! File hashes in Sysmon's `Hashes` format (`MD5=…,SHA256=…,IMPHASH=…`,
//! upper-case hex, in Sysmon's algorithm order: SHA1, MD5, SHA256, IMPHASH).

use std::fmt::Write;

/// Which hashes to compute (Sysmon's `HashAlgorithms` setting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashSet {
    pub sha1: bool,
    pub md5: bool,
    pub sha256: bool,
    pub imphash: bool,
}

impl Default for HashSet {
    fn default() -> Self {
        HashSet {
            sha1: false,
            md5: true,
            sha256: true,
            imphash: true,
        }
    }
}

impl HashSet {
    /// No hashes.
    pub const NONE: HashSet = HashSet {
        sha1: false,
        md5: false,
        sha256: false,
        imphash: false,
    };

    /// Every algorithm (Sysmon's `*`).
    pub const ALL: HashSet = HashSet {
        sha1: true,
        md5: true,
        sha256: true,
        imphash: true,
    };

    /// Parses `sha256,md5,imphash` (case-insensitive; `*` means all).
    pub fn parse(text: &str) -> Result<HashSet, String> {
        let mut set = HashSet::NONE;
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.to_ascii_lowercase().as_str() {
                "sha1" => set.sha1 = true,
                "md5" => set.md5 = true,
                "sha256" => set.sha256 = true,
                "imphash" => set.imphash = true,
                "*" => set = HashSet::ALL,
                other => {
                    return Err(format!(
                        "unknown hash algorithm `{other}` (supported: sha1, md5, sha256, imphash, *)"
                    ));
                }
            }
        }
        Ok(set)
    }

    /// True if nothing is to be computed.
    pub fn is_empty(&self) -> bool {
        !(self.sha1 || self.md5 || self.sha256 || self.imphash)
    }
}

/// Hashes of one file's bytes in Sysmon's format; `imphash` comes from the
/// PE parse (absent for non-PE files, as in Sysmon, where it is all zeros).
pub fn sysmon_hashes(set: HashSet, bytes: &[u8], imphash: Option<[u8; 16]>) -> String {
    use sha2::Digest;
    let mut out = String::new();
    let mut push = |name: &str, digest: &[u8]| {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(name);
        out.push('=');
        for byte in digest {
            let _ = write!(out, "{byte:02X}");
        }
    };
    if set.sha1 {
        push("SHA1", sha1::Sha1::digest(bytes).as_slice());
    }
    if set.md5 {
        push("MD5", md5::Md5::digest(bytes).as_slice());
    }
    if set.sha256 {
        push("SHA256", sha2::Sha256::digest(bytes).as_slice());
    }
    if set.imphash {
        push("IMPHASH", &imphash.unwrap_or([0; 16]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_in_sysmon_format() {
        let text = sysmon_hashes(HashSet::default(), b"abc", None);
        assert_eq!(
            text,
            "MD5=900150983CD24FB0D6963F7D28E17F72,SHA256=BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD,IMPHASH=00000000000000000000000000000000"
        );
        assert_eq!(
            sysmon_hashes(HashSet::parse("sha256").expect("valid"), b"", None),
            "SHA256=E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        );
        assert_eq!(
            sysmon_hashes(HashSet::parse("SHA1").expect("valid"), b"abc", None),
            "SHA1=A9993E364706816ABA3E25717850C26C9CD0D89D"
        );
        assert_eq!(HashSet::parse("*"), Ok(HashSet::ALL));
        assert!(HashSet::parse("crc32").is_err());
    }
}
