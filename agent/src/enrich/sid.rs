//! Binary SIDs (as the driver copies them from the token) to `S-1-…` text,
//! well-known account names, and integrity-level names.
//!
//! The bytes come from the kernel but are treated as hostile: every malformed
//! SID is a [`SidError`], never a panic.

use std::fmt;

/// Most sub-authorities a SID may have (`SID_MAX_SUB_AUTHORITIES`).
pub const MAX_SUB_AUTHORITIES: usize = 15;

/// A parsed security identifier.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sid {
    pub revision: u8,
    /// 48-bit identifier authority (big-endian on the wire).
    pub authority: u64,
    pub sub_authorities: Vec<u32>,
}

/// Why bytes are not a SID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SidError {
    /// Fewer than the 8 bytes of the fixed part.
    Short { len: usize },
    /// Revision is not 1.
    Revision { found: u8 },
    /// More than [`MAX_SUB_AUTHORITIES`] sub-authorities.
    TooManySubAuthorities { count: u8 },
    /// The length does not match `8 + 4 * count`.
    Length { len: usize, expected: usize },
}

impl fmt::Display for SidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SidError::Short { len } => write!(f, "SID of {len} bytes, at least 8 needed"),
            SidError::Revision { found } => write!(f, "SID revision {found}, expected 1"),
            SidError::TooManySubAuthorities { count } => {
                write!(
                    f,
                    "SID claims {count} sub-authorities, at most {MAX_SUB_AUTHORITIES} allowed"
                )
            }
            SidError::Length { len, expected } => {
                write!(
                    f,
                    "SID of {len} bytes, its sub-authority count implies {expected}"
                )
            }
        }
    }
}

impl std::error::Error for SidError {}

impl Sid {
    /// Parses a self-relative binary SID that fills `bytes` exactly.
    pub fn parse(bytes: &[u8]) -> Result<Sid, SidError> {
        let [revision, count, a0, a1, a2, a3, a4, a5, rest @ ..] = bytes else {
            return Err(SidError::Short { len: bytes.len() });
        };
        if *revision != 1 {
            return Err(SidError::Revision { found: *revision });
        }
        if usize::from(*count) > MAX_SUB_AUTHORITIES {
            return Err(SidError::TooManySubAuthorities { count: *count });
        }
        let expected = 8 + 4 * usize::from(*count);
        if bytes.len() != expected {
            return Err(SidError::Length {
                len: bytes.len(),
                expected,
            });
        }
        let authority = u64::from_be_bytes([0, 0, *a0, *a1, *a2, *a3, *a4, *a5]);
        let sub_authorities = rest
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Sid {
            revision: *revision,
            authority,
            sub_authorities,
        })
    }

    /// The last sub-authority (the RID, or the integrity level's value).
    pub fn rid(&self) -> Option<u32> {
        self.sub_authorities.last().copied()
    }
}

impl fmt::Display for Sid {
    /// `S-1-5-21-…`; authorities of 2^32 and above in hex, as Windows prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S-{}-", self.revision)?;
        if self.authority >= 1 << 32 {
            write!(f, "{:#014X}", self.authority)?;
        } else {
            write!(f, "{}", self.authority)?;
        }
        for sub in &self.sub_authorities {
            write!(f, "-{sub}")?;
        }
        Ok(())
    }
}

/// Names Windows gives well-known SIDs on every machine (English locale, as
/// Sysmon renders them). Domain- and machine-relative SIDs need
/// `LookupAccountSidW` (Windows only).
pub fn well_known_account(sid: &str) -> Option<&'static str> {
    Some(match sid {
        "S-1-5-18" => r"NT AUTHORITY\SYSTEM",
        "S-1-5-19" => r"NT AUTHORITY\LOCAL SERVICE",
        "S-1-5-20" => r"NT AUTHORITY\NETWORK SERVICE",
        "S-1-5-7" => r"NT AUTHORITY\ANONYMOUS LOGON",
        "S-1-5-32-544" => r"BUILTIN\Administrators",
        "S-1-5-32-545" => r"BUILTIN\Users",
        "S-1-5-32-546" => r"BUILTIN\Guests",
        "S-1-1-0" => "Everyone",
        "S-1-5-90-0" => r"Window Manager\Window Manager Group",
        _ => return None,
    })
}

/// The name Sysmon prints for a mandatory-label SID (`S-1-16-<level>`).
pub fn integrity_level_name(sid: &Sid) -> Option<&'static str> {
    if sid.authority != 16 || sid.sub_authorities.len() != 1 {
        return None;
    }
    Some(match sid.rid()? {
        0x0000 => "Untrusted",
        0x1000 => "Low",
        0x2000 => "Medium",
        0x2100 => "MediumPlus",
        0x3000 => "High",
        0x4000 => "System",
        0x5000 => "Protected",
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) fn encode(authority: u64, subs: &[u32]) -> Vec<u8> {
    let mut out = vec![1, subs.len() as u8];
    out.extend_from_slice(&authority.to_be_bytes()[2..]);
    for sub in subs {
        out.extend_from_slice(&sub.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_common_sids() {
        let system = Sid::parse(&encode(5, &[18])).expect("valid");
        assert_eq!(system.to_string(), "S-1-5-18");
        assert_eq!(
            well_known_account(&system.to_string()),
            Some(r"NT AUTHORITY\SYSTEM")
        );
        let user = Sid::parse(&encode(5, &[21, 1, 2, 3, 1001])).expect("valid");
        assert_eq!(user.to_string(), "S-1-5-21-1-2-3-1001");
        assert_eq!(well_known_account(&user.to_string()), None);
        let high = Sid::parse(&encode(16, &[12288])).expect("valid");
        assert_eq!(high.to_string(), "S-1-16-12288");
        assert_eq!(integrity_level_name(&high), Some("High"));
        assert_eq!(
            integrity_level_name(&Sid::parse(&encode(16, &[0x2000])).expect("valid")),
            Some("Medium")
        );
        assert_eq!(integrity_level_name(&user), None);
        assert_eq!(
            Sid::parse(&encode(1 << 40, &[]))
                .expect("valid")
                .to_string(),
            "S-1-0x010000000000"
        );
    }

    #[test]
    fn rejects_malformed_sids_with_a_reason() {
        assert_eq!(Sid::parse(&[1, 0, 0]), Err(SidError::Short { len: 3 }));
        let mut bad = encode(5, &[18]);
        bad[0] = 2;
        assert_eq!(Sid::parse(&bad), Err(SidError::Revision { found: 2 }));
        let mut many = encode(5, &[18]);
        many[1] = 16;
        assert_eq!(
            Sid::parse(&many),
            Err(SidError::TooManySubAuthorities { count: 16 })
        );
        let mut long = encode(5, &[18]);
        long.push(0);
        assert_eq!(
            Sid::parse(&long),
            Err(SidError::Length {
                len: 13,
                expected: 12
            })
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(sid) = Sid::parse(&bytes) {
                prop_assert_eq!(bytes.len(), 8 + 4 * sid.sub_authorities.len());
                let _ = sid.to_string();
            }
        }
    }
}
