//! PE version resources (what Sysmon reports as FileVersion, Description,
//! Product, Company, OriginalFileName) and the import hash, read from the
//! file's bytes with `object`, the PE reader the kernel model and the binary
//! gate use too. `object` finds the headers, sections and the resource
//! tree; the VS_VERSIONINFO block inside the resource is parsed here, since
//! `object` has no parser for it. Files are hostile: every read is bounds
//! checked, and any parse failure leaves the fields unknown. The bytes need
//! no particular alignment. The same parse gives `authenticode` the offsets
//! its digest skips ([`authenticode::PeTrait`], used by [`super::authenticode`]).

use std::ops::Range;

use authenticode::{PeOffsetError, PeOffsets, PeTrait};
use object::LittleEndian as LE;
use object::pe;
use object::read::pe::{
    ExportTable, ExportTarget, ImageNtHeaders, ImageOptionalHeader, PeFile, PeFile32, PeFile64,
    ResourceDirectory, ResourceDirectoryTable, ResourceNameOrId, SectionTable,
};

/// Version-resource strings Sysmon reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionInfo {
    pub file_version: Option<String>,
    pub description: Option<String>,
    pub product: Option<String>,
    pub company: Option<String>,
    pub original_file_name: Option<String>,
}

/// A PE image (PE32 or PE32+) as it lies in a file: what enrichment reads
/// from it, addressed by RVA through the section table.
#[derive(Debug)]
pub struct Image<'data> {
    data: &'data [u8],
    sections: SectionTable<'data>,
    resources: Option<ResourceDirectory<'data>>,
    /// RVA of the import descriptors, if the image has any.
    imports: Option<u32>,
    /// The export directory, if the image has a readable one.
    exports: Option<ExportTable<'data>>,
    pe64: bool,
    /// Where the header fields the Authenticode digest skips lie (the
    /// checksum and the security directory entry); `None` if the optional
    /// header is too short to hold them.
    authenticode: Option<PeOffsets>,
    /// File range of the attribute certificate table (the security
    /// directory holds a file offset, not an RVA), if the image has one.
    certificates: Option<Range<usize>>,
}

impl<'data> Image<'data> {
    /// Parses the headers of a PE32 or PE32+ file; `None` if it is not one.
    pub fn parse(data: &'data [u8]) -> Option<Self> {
        match object::read::pe::optional_header_magic(data).ok()? {
            pe::IMAGE_NT_OPTIONAL_HDR64_MAGIC => {
                Self::from_file(&PeFile64::parse(data).ok()?, true)
            }
            pe::IMAGE_NT_OPTIONAL_HDR32_MAGIC => {
                Self::from_file(&PeFile32::parse(data).ok()?, false)
            }
            _ => None,
        }
    }

    fn from_file<Pe: ImageNtHeaders>(file: &PeFile<'data, Pe>, pe64: bool) -> Option<Self> {
        let data = file.data();
        let sections = file.section_table();
        let resources = file
            .data_directories()
            .resource_directory(data, &sections)
            .ok()
            .flatten();
        let imports = file
            .data_directory(pe::IMAGE_DIRECTORY_ENTRY_IMPORT)
            .map(|dir| dir.virtual_address.get(LE))
            .filter(|&rva| rva != 0);
        let exports = file
            .data_directories()
            .export_table(data, &sections)
            .ok()
            .flatten();
        let certificates = file
            .data_directory(pe::IMAGE_DIRECTORY_ENTRY_SECURITY)
            .map(|dir| {
                let start = dir.virtual_address.get(LE) as usize;
                start..start.saturating_add(dir.size.get(LE) as usize)
            })
            .filter(|range| !range.is_empty());
        Some(Image {
            data,
            sections,
            resources,
            imports,
            exports,
            pe64,
            authenticode: authenticode_offsets(file),
            certificates,
        })
    }

    /// The file's bytes from `rva` to the end of the section holding it.
    fn at(&self, rva: u32) -> Option<&'data [u8]> {
        self.sections.pe_data_at(self.data, rva)
    }

    /// The NUL-terminated byte string at `rva` (without the NUL).
    fn c_str(&self, rva: u32) -> Option<&'data [u8]> {
        let bytes = self.at(rva)?;
        let end = bytes.iter().position(|&b| b == 0)?;
        Some(&bytes[..end])
    }

    /// The bytes of the version resource: type RT_VERSION, name 1, the
    /// first language.
    fn version_resource(&self) -> Option<&'data [u8]> {
        let dir = self.resources?;
        let types = dir.root().ok()?;
        let names = subtable(dir, &types, pe::RT_VERSION)?;
        let languages = subtable(dir, &names, 1)?;
        let entry = languages.entries.first()?.data(dir).ok()?.data()?;
        let bytes = self.at(entry.offset_to_data.get(LE))?;
        bytes.get(..usize::try_from(entry.size.get(LE)).ok()?)
    }
}

/// The offsets of the header fields the Authenticode digest skips: the
/// optional header's CheckSum (64 bytes in, PE32 and PE32+ alike) and the
/// security entry of the data directories that follow the optional header.
/// `None` when the header declares fewer than five data directories.
fn authenticode_offsets<Pe: ImageNtHeaders>(file: &PeFile<'_, Pe>) -> Option<PeOffsets> {
    let optional = file.nt_headers().optional_header();
    let header = object::pod::bytes_of(optional);
    // Where the optional header lies in the file: `object` borrows it from
    // `data`, so the distance between the two addresses is its offset.
    let start = (header.as_ptr() as usize).checked_sub(file.data().as_ptr() as usize)?;
    let entry = std::mem::size_of::<pe::ImageDataDirectory>();
    if (optional.number_of_rva_and_sizes() as usize) <= pe::IMAGE_DIRECTORY_ENTRY_SECURITY {
        return None;
    }
    let check_sum = start.checked_add(64)?;
    let security = start
        .checked_add(header.len())?
        .checked_add(entry.checked_mul(pe::IMAGE_DIRECTORY_ENTRY_SECURITY)?)?;
    Some(PeOffsets {
        check_sum,
        after_check_sum: check_sum.checked_add(4)?,
        security_data_dir: security,
        after_security_data_dir: security.checked_add(entry)?,
        after_header: optional.size_of_headers() as usize,
    })
}

/// What `authenticode` needs of a PE: its bytes, section file ranges, the
/// certificate table and the skipped header fields. Every range is checked
/// by the caller against the data (`get`), so a hostile header yields an
/// error, not a panic.
impl PeTrait for Image<'_> {
    fn data(&self) -> &[u8] {
        self.data
    }

    fn num_sections(&self) -> usize {
        self.sections.len()
    }

    /// `index` counts from 1, as `authenticode` asks.
    fn section_data_range(&self, index: usize) -> Result<Range<usize>, PeOffsetError> {
        let section = self
            .sections
            .section(object::SectionIndex(index))
            .map_err(|_| PeOffsetError)?;
        let start = section.pointer_to_raw_data.get(LE) as usize;
        let end = start
            .checked_add(section.size_of_raw_data.get(LE) as usize)
            .ok_or(PeOffsetError)?;
        Ok(start..end)
    }

    fn certificate_table_range(&self) -> Result<Option<Range<usize>>, PeOffsetError> {
        Ok(self.certificates.clone())
    }

    fn offsets(&self) -> Result<PeOffsets, PeOffsetError> {
        self.authenticode.clone().ok_or(PeOffsetError)
    }
}

/// The subtable of `table`'s entry with numeric id `id`.
fn subtable<'data>(
    dir: ResourceDirectory<'data>,
    table: &ResourceDirectoryTable<'data>,
    id: u16,
) -> Option<ResourceDirectoryTable<'data>> {
    table
        .entries
        .iter()
        .find(|e| matches!(e.name_or_id(), ResourceNameOrId::Id(i) if i == id))?
        .data(dir)
        .ok()?
        .table()
}

/// The version strings of a PE image, if it has a version resource.
pub fn version_info(image: &Image<'_>) -> Option<VersionInfo> {
    let bytes = image.version_resource()?;
    let words: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|w| u16::from_le_bytes([w[0], w[1]]))
        .collect();
    let block = VersionBlock::parse(&words)?;
    // Sysmon takes the first translation; US English / Unicode is the usual
    // fallback when a file declares none.
    let lang = block
        .translation
        .first()
        .copied()
        .unwrap_or((0x0409, 0x04b0));
    let get = |key: &str| {
        block
            .value(lang, key)
            .map(|v| v.trim_end_matches('\0').trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    Some(VersionInfo {
        file_version: get("FileVersion"),
        description: get("FileDescription"),
        product: get("ProductName"),
        company: get("CompanyName"),
        original_file_name: get("OriginalFilename"),
    })
}

/// A language and code page: a `Translation` pair, a string table's key.
type Lang = (u16, u16);

/// A string table's (key, value) pairs, in file order.
type Strings<'a> = Vec<(&'a [u16], &'a [u16])>;

/// A VS_VERSIONINFO block: its `Translation` pairs and its string tables,
/// each with its language.
struct VersionBlock<'a> {
    translation: Vec<Lang>,
    tables: Vec<(Lang, Strings<'a>)>,
}

impl<'a> VersionBlock<'a> {
    /// Reads the first well-formed VS_VERSIONINFO node of `words`:
    /// StringFileInfo → StringTable ("040904B0") → String nodes, and
    /// VarFileInfo → Var "Translation".
    fn parse(words: &'a [u16]) -> Option<Self> {
        let root = Nodes::new(words, ValueLength::Bytes).flatten().next()?;
        let mut block = VersionBlock {
            translation: Vec::new(),
            tables: Vec::new(),
        };
        for info in Nodes::new(root.children, ValueLength::Zero).flatten() {
            if info.key == utf16("StringFileInfo") {
                for table in Nodes::new(info.children, ValueLength::Zero).flatten() {
                    let Some(lang) = parse_lang(table.key) else {
                        continue;
                    };
                    let strings = Nodes::new(table.children, ValueLength::Words)
                        .flatten()
                        .map(|s| {
                            let value = s.value.strip_suffix(&[0]).unwrap_or(s.value);
                            (s.key, value)
                        })
                        .collect();
                    block.tables.push((lang, strings));
                }
            } else if info.key == utf16("VarFileInfo") {
                for var in Nodes::new(info.children, ValueLength::Bytes).flatten() {
                    if var.key == utf16("Translation") {
                        block.translation = var
                            .value
                            .chunks_exact(2)
                            .map(|pair| (pair[0], pair[1]))
                            .collect();
                    }
                }
            }
        }
        Some(block)
    }

    /// The string `key` in the table of `lang`; the last one if repeated.
    fn value(&self, lang: Lang, key: &str) -> Option<String> {
        let key = utf16(key);
        self.tables
            .iter()
            .filter(|(l, _)| *l == lang)
            .flat_map(|(_, strings)| strings)
            .rfind(|(k, _)| *k == key)
            .map(|(_, v)| String::from_utf16_lossy(v))
    }
}

fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// A string table's key, eight hex digits: language then code page.
fn parse_lang(key: &[u16]) -> Option<Lang> {
    let text = String::from_utf16(key).ok()?;
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let lang = u16::from_str_radix(&text[..4], 16).ok()?;
    let code_page = u16::from_str_radix(&text[4..], 16).ok()?;
    Some((lang, code_page))
}

/// How a version node's `wValueLength` counts its value.
#[derive(Clone, Copy)]
enum ValueLength {
    /// Must be zero (StringFileInfo, VarFileInfo, StringTable).
    Zero,
    /// In bytes (VS_VERSIONINFO's fixed info, Var).
    Bytes,
    /// In UTF-16 units (String).
    Words,
}

/// One node of the version tree: `wLength`, `wValueLength`, `wType`, a
/// NUL-terminated key, padding to 32 bits, the value, padding, children.
struct Node<'a> {
    key: &'a [u16],
    value: &'a [u16],
    children: &'a [u16],
}

/// The sibling nodes in `words`. A malformed node ends the list.
struct Nodes<'a> {
    words: &'a [u16],
    kind: ValueLength,
}

impl<'a> Nodes<'a> {
    fn new(words: &'a [u16], kind: ValueLength) -> Self {
        Nodes { words, kind }
    }

    fn node(&mut self) -> Option<Node<'a>> {
        let words = self.words;
        let header = words.get(..4)?;
        // wLength counts bytes, header included; at least the header and
        // a key's NUL.
        let length = usize::from(header[0] / 2).max(4);
        let value_length = match self.kind {
            ValueLength::Zero if header[1] == 0 => 0,
            ValueLength::Zero => return None,
            ValueLength::Bytes => usize::from(header[1] / 2),
            ValueLength::Words => usize::from(header[1]),
        };
        let node = words.get(..length)?;
        self.words = words.get(align2(length)..).unwrap_or_default();
        let key_len = node[3..].iter().position(|&w| w == 0)?;
        let key = &node[3..3 + key_len];
        let rest = node.get(align2(key_len) + 4..).unwrap_or_default();
        let value = rest.get(..value_length)?;
        let children = rest.get(align2(value_length)..).unwrap_or_default();
        Some(Node {
            key,
            value,
            children,
        })
    }
}

impl<'a> Iterator for Nodes<'a> {
    type Item = Option<Node<'a>>;

    fn next(&mut self) -> Option<Option<Node<'a>>> {
        if self.words.is_empty() {
            return None;
        }
        let node = self.node();
        if node.is_none() {
            self.words = &[];
        }
        Some(node)
    }
}

/// `n` UTF-16 units rounded up to a 32-bit boundary.
fn align2(n: usize) -> usize {
    n + (n & 1)
}

/// The import hash (Mandiant's imphash, as `pefile` computes it): MD5 over
/// `dll.function` pairs, lower case, DLL extension `.dll`/`.ocx`/`.sys`
/// removed, comma separated. Ordinal imports are written `ordN`; `pefile`
/// resolves ordinals of ws2_32/wsock32/oleaut32 to names, which this does
/// not, so those few files hash differently. A DLL's functions are read
/// from its import lookup table, or from its address table when the lookup
/// table's RVA is 0 (as `pefile` does; some linkers write no lookup table).
/// `None` when there are no imports.
pub fn imphash(image: &Image<'_>) -> Option<[u8; 16]> {
    use md5::Digest;
    const DESCRIPTOR: usize = std::mem::size_of::<pe::ImageImportDescriptor>();
    let mut descriptors = image.at(image.imports?)?.chunks_exact(DESCRIPTOR);
    let mut text = String::new();
    while let Some(desc) = descriptors.next().filter(|d| d.iter().any(|&b| b != 0)) {
        let word =
            |at: usize| u32::from_le_bytes([desc[at], desc[at + 1], desc[at + 2], desc[at + 3]]);
        let (lookup, name, address) = (word(0), word(12), word(16));
        let Some(dll) = image.c_str(name) else {
            continue;
        };
        let dll = String::from_utf8_lossy(dll).to_ascii_lowercase();
        let stem = match dll.rsplit_once('.') {
            Some((stem, "dll" | "ocx" | "sys")) => stem,
            _ => &dll,
        };
        let thunks = if lookup != 0 { lookup } else { address };
        for function in image.import_names(thunks) {
            if !text.is_empty() {
                text.push(',');
            }
            text.push_str(stem);
            text.push('.');
            text.push_str(&function);
        }
    }
    if text.is_empty() {
        return None;
    }
    Some(md5::Md5::digest(text.as_bytes()).into())
}

impl Image<'_> {
    /// The lower-case function names (`ordN` for ordinals) of the thunk
    /// list at `rva`, up to its zero entry or the end of its section.
    /// Entries whose hint/name is unreadable are skipped.
    fn import_names(&self, rva: u32) -> Vec<String> {
        let Some(list) = self.at(rva) else {
            return Vec::new();
        };
        let size = if self.pe64 { 8 } else { 4 };
        let ordinal_flag = if self.pe64 { 1 << 63 } else { 1 << 31 };
        list.chunks_exact(size)
            .map(|t| t.iter().rev().fold(0u64, |v, &b| v << 8 | u64::from(b)))
            .take_while(|&thunk| thunk != 0)
            .filter_map(|thunk| {
                if thunk & ordinal_flag != 0 {
                    Some(format!("ord{}", thunk as u16))
                } else {
                    // The hint/name entry: a 16-bit hint, then the name.
                    let name = self.c_str((thunk as u32).checked_add(2)?)?;
                    Some(String::from_utf8_lossy(name).to_ascii_lowercase())
                }
            })
            // `pefile` leaves out functions with an empty name.
            .filter(|name| !name.is_empty())
            .collect()
    }
}

/// Most named exports kept per image (ntdll.dll has about 2,500).
pub const MAX_EXPORTS: usize = 8192;

/// The image's named exports that are code addresses in it (forwarders
/// left out), as (RVA, name), sorted by RVA then name, at most
/// [`MAX_EXPORTS`]: what Sysmon 8's `StartFunction` is looked up in.
pub fn exports(image: &Image<'_>) -> Vec<(u32, String)> {
    let Some(table) = &image.exports else {
        return Vec::new();
    };
    let mut named: Vec<(u32, String)> = table
        .exports()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|export| match (export.name, export.target) {
            (Some(name), ExportTarget::Address(rva)) if !name.is_empty() => {
                Some((rva, String::from_utf8_lossy(name).into_owned()))
            }
            _ => None,
        })
        .take(MAX_EXPORTS)
        .collect();
    named.sort_unstable();
    named
}
