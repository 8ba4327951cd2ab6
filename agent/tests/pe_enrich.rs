//! The agent's PE reader on real linker output: `tests/data/pe/` holds a
//! PE32 (lld-link) and a PE32+ (GNU ld) image built from `version.rc` and
//! `fixture.c` by `build.sh`. The expected values do not come from the
//! reader under test: the version strings are the ones `version.rc` writes,
//! and the import hashes are MD5 of the `pefile`-style import list written
//! out below, which `oracle.py` (a separate struct-based reader) prints
//! for the same files.

use ringside_agent::enrich::pe::{self, Image, VersionInfo};

const PE32: &[u8] = include_bytes!("data/pe/fixture32.exe");
const PE64: &[u8] = include_bytes!("data/pe/fixture64.exe");

/// The strings of `version.rc`'s German table (its first translation),
/// trimmed; the empty ProductName is unknown. The English table, whose
/// values differ, must not be read.
fn expected_version() -> VersionInfo {
    VersionInfo {
        file_version: Some("1.2.3.4".into()),
        description: Some("Fixture für den PE-Leser".into()),
        product: None,
        company: Some("Ringside Test GmbH".into()),
        original_file_name: Some("fixture.exe".into()),
    }
}

/// One fixture image and what independent readers find in it.
struct Fixture {
    name: &'static str,
    bytes: &'static [u8],
    /// Its imports in import-table order, joined as `pefile`'s imphash
    /// joins them.
    imports: &'static str,
    /// That text's MD5, as `oracle.py` prints it for the file.
    imphash: &'static str,
    /// File offsets of the import descriptors' OriginalFirstThunk fields,
    /// with the RVA each holds (from `oracle.py`'s reading of the file).
    lookup_tables: [(usize, u32); 2],
}

const FIXTURES: [Fixture; 2] = [
    Fixture {
        name: "PE32",
        bytes: PE32,
        imports: "kernel32.exitprocess,kernel32.gettickcount,rstest.rs_named,rstest.ord7",
        imphash: "70b30afe4538074b759ebe450746247f",
        lookup_tables: [(0x630, 0x206c), (0x644, 0x2078)],
    },
    Fixture {
        name: "PE32+",
        bytes: PE64,
        imports: "rstest.rs_named,rstest.ord7,kernel32.exitprocess,kernel32.gettickcount",
        imphash: "9488a08cc3e07adb131b3a40383b8395",
        lookup_tables: [(0xc00, 0x5040), (0xc14, 0x5058)],
    },
];

fn hex(digest: [u8; 16]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn md5_hex(text: &str) -> String {
    use md5::Digest;
    hex(md5::Md5::digest(text.as_bytes()).into())
}

fn imphash_of(bytes: &[u8]) -> Option<String> {
    pe::imphash(&Image::parse(bytes)?).map(hex)
}

#[test]
fn version_strings_are_those_of_the_first_translation() {
    for Fixture { name, bytes, .. } in FIXTURES {
        let image = Image::parse(bytes).unwrap_or_else(|| panic!("{name} parses"));
        assert_eq!(pe::version_info(&image), Some(expected_version()), "{name}");
    }
}

#[test]
fn imphash_matches_the_pefile_import_list() {
    for f in FIXTURES {
        let name = f.name;
        assert_eq!(
            md5_hex(f.imports),
            f.imphash,
            "{name}: the oracles disagree"
        );
        assert_eq!(imphash_of(f.bytes).as_deref(), Some(f.imphash), "{name}");
    }
}

/// Some linkers write no import lookup table (OriginalFirstThunk 0);
/// `pefile` then reads the names from the address table, which on disk
/// holds the same entries.
#[test]
fn imphash_falls_back_to_the_address_table() {
    for Fixture {
        name,
        bytes,
        imphash,
        lookup_tables,
        ..
    } in FIXTURES
    {
        let mut patched = bytes.to_vec();
        for (at, rva) in lookup_tables {
            let field = &mut patched[at..at + 4];
            assert_eq!(field, rva.to_le_bytes(), "{name}: fixture layout moved");
            field.fill(0);
        }
        assert_eq!(imphash_of(&patched).as_deref(), Some(imphash), "{name}");
    }
}

/// A file read into memory has no alignment guarantee for its tables.
#[test]
fn any_buffer_alignment_reads_the_same() {
    for Fixture {
        name,
        bytes,
        imphash,
        ..
    } in FIXTURES
    {
        for shift in 1..8 {
            let mut buffer = vec![0xcc; shift];
            buffer.extend_from_slice(bytes);
            let image = Image::parse(&buffer[shift..]).expect("parses");
            assert_eq!(
                pe::version_info(&image),
                Some(expected_version()),
                "{name} +{shift}"
            );
            assert_eq!(pe::imphash(&image).map(hex).as_deref(), Some(imphash));
        }
    }
}

/// Files are hostile: every truncation and every single-byte corruption
/// of a real image parses or is refused, never panics.
#[test]
fn truncated_and_corrupted_images_do_not_panic() {
    for Fixture { bytes, .. } in FIXTURES {
        for len in 0..bytes.len() {
            if let Some(image) = Image::parse(&bytes[..len]) {
                let _ = (pe::version_info(&image), pe::imphash(&image));
            }
        }
        let mut corrupt = bytes.to_vec();
        for at in 0..corrupt.len() {
            let original = corrupt[at];
            for value in [0x00, 0xff, original ^ 0x80] {
                corrupt[at] = value;
                if let Some(image) = Image::parse(&corrupt) {
                    let _ = (pe::version_info(&image), pe::imphash(&image));
                }
            }
            corrupt[at] = original;
        }
    }
}

#[test]
fn not_a_pe_file_has_nothing() {
    assert!(Image::parse(b"MZ").is_none());
    assert!(Image::parse(&PE64[..0x40]).is_none());
}
