//! The binary gate: what a `ringside.sys` must be before it is packaged.
//!
//! AMD64 PE32+, subsystem NATIVE, FORCE_INTEGRITY + NX_COMPAT +
//! DYNAMIC_BASE, a valid PE checksum (recomputed here), no section both
//! writable and executable, base relocations, a CodeView RSDS record naming
//! `ringside.pdb`, imports only from ntoskrnl.exe / fltmgr.sys / hal.dll,
//! no `KeBugCheckEx` import (with LTO an unreachable panic handler is
//! removed, so that import means a reachable panic; DESIGN.md principle 4),
//! and no abort instruction anywhere in its code (`ud2`, `int 29h`): an
//! abort trap crashes the machine as surely as KeBugCheckEx. The whole code
//! is decoded, not only what callbacks and dispatch routines reach, so none
//! needs a proof that it is unreachable: there is none.

use object::LittleEndian as LE;
use object::pe;
use object::read::Object;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile64};

/// DLLs a ringside.sys may import from.
pub const ALLOWED_DLLS: [&str; 3] = ["ntoskrnl.exe", "fltmgr.sys", "hal.dll"];
/// Imports that mean a reachable panic path.
pub const FORBIDDEN_IMPORTS: [&str; 2] = ["KeBugCheckEx", "KeBugCheck"];
/// File name the CodeView record must name.
pub const PDB_NAME: &str = "ringside.pdb";

/// What the gate saw in a passing image.
#[derive(Debug, Default)]
pub struct Report {
    pub checksum: u32,
    pub sections: Vec<String>,
    /// (dll, function) pairs.
    pub imports: Vec<(String, String)>,
    pub pdb_path: String,
}

/// Offset of `OptionalHeader.CheckSum` from the start of the NT headers
/// (4-byte signature + 20-byte file header + 64 bytes into PE32+'s optional
/// header).
const CHECKSUM_OFFSET_IN_NT_HEADERS: usize = 4 + 20 + 64;

/// The PE checksum as `CheckSumMappedFile` computes it: the one's-complement
/// style 16-bit sum of the file with the checksum field taken as zero,
/// folded, plus the file length.
pub fn pe_checksum(image: &[u8], checksum_offset: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, chunk) in image.chunks(2).enumerate() {
        let offset = i * 2;
        if offset == checksum_offset || offset == checksum_offset + 2 {
            continue;
        }
        let word = match chunk {
            [lo, hi] => u16::from_le_bytes([*lo, *hi]),
            [lo] => u16::from(*lo),
            _ => 0,
        };
        sum += u64::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(image.len() as u32)
}

/// Offset of the checksum field in `image`, if it has a PE header.
pub fn checksum_offset(image: &[u8]) -> Option<usize> {
    let lfanew = u32::from_le_bytes(image.get(0x3c..0x40)?.try_into().ok()?) as usize;
    Some(lfanew + CHECKSUM_OFFSET_IN_NT_HEADERS)
}

/// Runs every check; on failure returns every problem found, one per line.
pub fn check(image: &[u8]) -> Result<Report, Vec<String>> {
    let mut problems = Vec::new();
    let file = match PeFile64::parse(image) {
        Ok(file) => file,
        Err(e) => return Err(vec![format!("not an AMD64 PE32+ image: {e}")]),
    };
    let nt = file.nt_headers();
    let header = nt.file_header();
    let optional = nt.optional_header();
    let mut report = Report::default();

    if header.machine.get(LE) != pe::IMAGE_FILE_MACHINE_AMD64 {
        problems.push(format!(
            "machine is {:#06x}, not AMD64 (0x8664)",
            header.machine.get(LE)
        ));
    }
    if optional.magic() != pe::IMAGE_NT_OPTIONAL_HDR64_MAGIC {
        problems.push("optional header is not PE32+".to_string());
    }
    if optional.subsystem() != pe::IMAGE_SUBSYSTEM_NATIVE {
        problems.push(format!(
            "subsystem is {}, not NATIVE (1): link with /SUBSYSTEM:NATIVE /DRIVER",
            optional.subsystem()
        ));
    }
    let dll = optional.dll_characteristics().0;
    for (flag, name, fix) in [
        (
            pe::IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY,
            "FORCE_INTEGRITY",
            "/INTEGRITYCHECK",
        ),
        (
            pe::IMAGE_DLLCHARACTERISTICS_NX_COMPAT,
            "NX_COMPAT",
            "/NXCOMPAT",
        ),
        (
            pe::IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE,
            "DYNAMIC_BASE",
            "/DYNAMICBASE",
        ),
    ] {
        if dll & flag.0 == 0 {
            problems.push(format!("DllCharacteristics lacks {name}: link with {fix}"));
        }
    }

    let stored = optional.check_sum();
    match checksum_offset(image) {
        Some(offset) => {
            let computed = pe_checksum(image, offset);
            report.checksum = computed;
            if stored != computed {
                problems.push(format!(
                    "PE checksum is {stored:#010x}, computed {computed:#010x}: link with /RELEASE"
                ));
            }
        }
        None => problems.push("no PE header offset".to_string()),
    }

    let image_base = optional.image_base();
    for section in file.section_table().iter() {
        let name = String::from_utf8_lossy(section.raw_name())
            .trim_end_matches('\0')
            .to_string();
        let flags = section.characteristics.get(LE).0;
        if flags & pe::IMAGE_SCN_MEM_WRITE.0 != 0 && flags & pe::IMAGE_SCN_MEM_EXECUTE.0 != 0 {
            problems.push(format!("section {name} is both writable and executable"));
        }
        if flags & pe::IMAGE_SCN_MEM_EXECUTE.0 != 0 {
            let rva = section.virtual_address.get(LE);
            match section.pe_data(image) {
                Ok(code) => {
                    let size = (section.virtual_size.get(LE) as usize).min(code.len());
                    for (at, what) in aborts(&code[..size], image_base + u64::from(rva)) {
                        problems.push(format!(
                            "{what} at RVA {:#x} in {name}: an abort in kernel code crashes the machine (a panic or assertion path survived; find it with the PDB)",
                            at - image_base
                        ));
                    }
                }
                Err(e) => problems.push(format!("section {name} unreadable: {e}")),
            }
        }
        report.sections.push(name);
    }

    let relocs = file
        .data_directories()
        .get(pe::IMAGE_DIRECTORY_ENTRY_BASERELOC)
        .map_or(0, |d| d.size.get(LE));
    if relocs == 0 {
        problems.push(
            "no base relocations: the kernel cannot relocate the image (/DYNAMICBASE, no /FIXED)"
                .to_string(),
        );
    }

    match file.pdb_info() {
        Ok(Some(codeview)) => {
            let path = String::from_utf8_lossy(codeview.path()).to_string();
            let base = path.rsplit(['\\', '/']).next().unwrap_or_default();
            if !base.eq_ignore_ascii_case(PDB_NAME) {
                problems.push(format!("CodeView record names {path:?}, not {PDB_NAME}"));
            }
            report.pdb_path = path;
        }
        Ok(None) => problems.push("no CodeView RSDS record: link with /DEBUG".to_string()),
        Err(e) => problems.push(format!("unreadable debug directory: {e}")),
    }

    match imports(&file) {
        Ok(list) => {
            for (dll, function) in &list {
                if !ALLOWED_DLLS.iter().any(|a| a.eq_ignore_ascii_case(dll)) {
                    problems.push(format!(
                        "imports {function} from {dll}: only {ALLOWED_DLLS:?} are allowed"
                    ));
                }
                if FORBIDDEN_IMPORTS.contains(&function.as_str()) {
                    problems.push(format!(
                        "imports {function} from {dll}: a panic path is reachable in this image"
                    ));
                }
            }
            report.imports = list;
        }
        Err(e) => problems.push(format!("unreadable import table: {e}")),
    }

    if problems.is_empty() {
        Ok(report)
    } else {
        Err(problems)
    }
}

/// Abort instructions in `code` (loaded at `address`), decoded as x64:
/// `ud2` (what `core::intrinsics::abort` and `unreachable_unchecked`-style
/// traps compile to) and `int 29h` (`__fastfail`). Linear decoding is exact
/// here: LLVM places no data (jump tables) in COFF code sections.
fn aborts(code: &[u8], address: u64) -> Vec<(u64, &'static str)> {
    use iced_x86::{Code, Decoder, DecoderOptions};
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut found = Vec::new();
    for instruction in &mut decoder {
        match instruction.code() {
            Code::Ud2 => found.push((instruction.ip(), "ud2")),
            Code::Int_imm8 if instruction.immediate8() == 0x29 => {
                found.push((instruction.ip(), "int 29h (__fastfail)"))
            }
            _ => {}
        }
    }
    found
}

/// The GUID in the CodeView record of `image`, if any.
pub fn codeview_guid(image: &[u8]) -> Option<[u8; 16]> {
    let file = PeFile64::parse(image).ok()?;
    file.pdb_info().ok()?.map(|cv| cv.guid())
}

/// The GUID in a PDB's information stream: what WinDbg matches against
/// the image's CodeView record. Read with the `pdb` crate (the WinDbg
/// check's reader too), as the bytes the file holds.
pub fn pdb_guid(pdb: &[u8]) -> Result<[u8; 16], String> {
    let mut file = pdb::PDB::open(std::io::Cursor::new(pdb)).map_err(|e| e.to_string())?;
    let info = file.pdb_information().map_err(|e| e.to_string())?;
    // On disk the GUID's first three fields are little-endian, as in the
    // image's CodeView record; `Uuid::to_bytes_le` gives those bytes back.
    Ok(info.guid.to_bytes_le())
}

fn imports(file: &PeFile64<'_>) -> object::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let Some(table) = file.import_table()? else {
        return Ok(out);
    };
    let mut descriptors = table.descriptors()?;
    while let Some(descriptor) = descriptors.next()? {
        let dll = String::from_utf8_lossy(table.name(descriptor.name.get(LE))?).to_string();
        let mut thunk_rva = descriptor.original_first_thunk.get(LE);
        if thunk_rva == 0 {
            thunk_rva = descriptor.first_thunk.get(LE);
        }
        let mut thunks = table.thunks(thunk_rva)?;
        while let Some(thunk) = thunks.next::<pe::ImageNtHeaders64>()? {
            let function = match table.import::<pe::ImageNtHeaders64>(thunk)? {
                object::read::pe::Import::Name(_, name) => {
                    String::from_utf8_lossy(name).to_string()
                }
                object::read::pe::Import::Ordinal(n) => format!("#{n}"),
            };
            out.push((dll.clone(), function));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a small AMD64 driver-like image: .text (RX), .rdata (imports,
    /// debug directory, RSDS), .reloc; checksum set. `imports` lists
    /// (dll, [functions]).
    struct Image {
        bytes: Vec<u8>,
    }

    const FILE_ALIGN: usize = 0x200;
    const TEXT: (usize, u32) = (0x200, 0x1000);
    const RDATA: (usize, u32) = (0x400, 0x2000);
    const RELOC: (usize, u32) = (0x800, 0x3000);
    const LFANEW: usize = 0x40;
    const OPT: usize = LFANEW + 24;
    const SECTIONS: usize = OPT + 240;

    fn put16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn put64(b: &mut [u8], at: usize, v: u64) {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    impl Image {
        fn new(imports: &[(&str, &[&str])], pdb: &str) -> Image {
            let mut b = vec![0u8; RELOC.0 + FILE_ALIGN];
            b[0] = b'M';
            b[1] = b'Z';
            put32(&mut b, 0x3c, LFANEW as u32);
            b[LFANEW..LFANEW + 4].copy_from_slice(b"PE\0\0");
            let fh = LFANEW + 4;
            put16(&mut b, fh, 0x8664);
            put16(&mut b, fh + 2, 3);
            put16(&mut b, fh + 16, 240);
            put16(&mut b, fh + 18, 0x0022); // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE
            put16(&mut b, OPT, 0x20b);
            put32(&mut b, OPT + 16, TEXT.1); // entry point
            put64(&mut b, OPT + 24, 0x1_4000_0000); // image base
            put32(&mut b, OPT + 32, 0x1000); // section alignment
            put32(&mut b, OPT + 36, FILE_ALIGN as u32);
            put16(&mut b, OPT + 40, 6); // OS version
            put16(&mut b, OPT + 48, 6); // subsystem version
            put32(&mut b, OPT + 56, 0x4000); // size of image
            put32(&mut b, OPT + 60, 0x200); // size of headers
            put16(&mut b, OPT + 68, 1); // NATIVE
            put16(&mut b, OPT + 70, 0x01e0 & !0x20 | 0x0080); // DYNAMIC_BASE|FORCE_INTEGRITY|NX_COMPAT
            put32(&mut b, OPT + 108, 16); // number of data directories

            let mut section = |i: usize, name: &[u8], (raw, rva): (usize, u32), flags: u32| {
                let s = SECTIONS + i * 40;
                b[s..s + name.len()].copy_from_slice(name);
                put32(&mut b, s + 8, 0x200); // virtual size
                put32(&mut b, s + 12, rva);
                put32(
                    &mut b,
                    s + 16,
                    if name == b".rdata" { 0x400 } else { 0x200 },
                );
                put32(&mut b, s + 20, raw as u32);
                put32(&mut b, s + 36, flags);
            };
            section(0, b".text", TEXT, 0x6000_0020);
            section(1, b".rdata", RDATA, 0x4000_0040);
            section(2, b".reloc", RELOC, 0x4200_0040);
            // .rdata virtual size covers 0x400 bytes.
            put32(&mut b, SECTIONS + 40 + 8, 0x400);

            // .rdata layout: descriptors at +0, strings and thunks after.
            let rva_of = |off: usize| RDATA.1 + (off - RDATA.0) as u32;
            let mut cursor = RDATA.0 + 20 * (imports.len() + 1);
            for (i, (dll, functions)) in imports.iter().enumerate() {
                let thunks = cursor;
                cursor += 8 * (functions.len() + 1);
                let mut names = Vec::new();
                for function in functions.iter() {
                    names.push(cursor);
                    cursor += 2;
                    b[cursor..cursor + function.len()].copy_from_slice(function.as_bytes());
                    cursor += function.len() + 1;
                    cursor += cursor % 2;
                }
                for (j, name) in names.iter().enumerate() {
                    put64(&mut b, thunks + 8 * j, u64::from(rva_of(*name)));
                }
                let dll_name = cursor;
                b[cursor..cursor + dll.len()].copy_from_slice(dll.as_bytes());
                cursor += dll.len() + 1;
                cursor += cursor % 2;
                let d = RDATA.0 + 20 * i;
                put32(&mut b, d, rva_of(thunks)); // OriginalFirstThunk
                put32(&mut b, d + 12, rva_of(dll_name));
                put32(&mut b, d + 16, rva_of(thunks)); // FirstThunk
            }
            put32(&mut b, OPT + 112 + 8, rva_of(RDATA.0)); // import directory
            put32(&mut b, OPT + 112 + 12, (20 * (imports.len() + 1)) as u32);

            // Debug directory and RSDS record.
            cursor = (cursor + 7) & !3;
            let debug = cursor;
            let rsds = debug + 28;
            let rsds_len = 24 + pdb.len() + 1;
            put32(&mut b, debug + 12, 2); // IMAGE_DEBUG_TYPE_CODEVIEW
            put32(&mut b, debug + 16, rsds_len as u32);
            put32(&mut b, debug + 20, rva_of(rsds));
            put32(&mut b, debug + 24, rsds as u32);
            b[rsds..rsds + 4].copy_from_slice(b"RSDS");
            put32(&mut b, rsds + 20, 1); // age
            b[rsds + 24..rsds + 24 + pdb.len()].copy_from_slice(pdb.as_bytes());
            put32(&mut b, OPT + 112 + 6 * 8, rva_of(debug));
            put32(&mut b, OPT + 112 + 6 * 8 + 4, 28);

            // One relocation block.
            put32(&mut b, RELOC.0, TEXT.1);
            put32(&mut b, RELOC.0 + 4, 12);
            put16(&mut b, RELOC.0 + 8, 0xA000);
            put32(&mut b, OPT + 112 + 5 * 8, RELOC.1);
            put32(&mut b, OPT + 112 + 5 * 8 + 4, 12);

            let mut image = Image { bytes: b };
            image.fix_checksum();
            image
        }

        fn good() -> Image {
            Image::new(
                &[
                    ("ntoskrnl.exe", &["ExAllocatePool2", "IofCompleteRequest"]),
                    ("FLTMGR.SYS", &["FltRegisterFilter"]),
                ],
                r"C:\build\ringside.pdb",
            )
        }

        fn fix_checksum(&mut self) {
            let at = checksum_offset(&self.bytes).unwrap();
            put32(&mut self.bytes, at, 0);
            let sum = pe_checksum(&self.bytes, at);
            put32(&mut self.bytes, at, sum);
        }

        fn problems(&self) -> Vec<String> {
            match check(&self.bytes) {
                Ok(_) => vec![],
                Err(problems) => problems,
            }
        }

        fn assert_fails(&self, needle: &str) {
            let problems = self.problems();
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "expected a problem containing {needle:?}, got {problems:?}"
            );
        }
    }

    #[test]
    fn a_well_formed_image_passes() {
        let image = Image::good();
        let report = check(&image.bytes).expect("passes");
        assert_eq!(report.imports.len(), 3);
        assert!(report.pdb_path.ends_with("ringside.pdb"));
        assert_eq!(report.sections, [".text", ".rdata", ".reloc"]);
    }

    #[test]
    fn wrong_machine_or_subsystem_fails() {
        let mut image = Image::good();
        put16(&mut image.bytes, LFANEW + 4, 0xAA64);
        image.fix_checksum();
        image.assert_fails("AMD64");
        let mut image = Image::good();
        put16(&mut image.bytes, OPT + 68, 2); // WINDOWS_GUI
        image.fix_checksum();
        image.assert_fails("NATIVE");
    }

    #[test]
    fn each_missing_dll_characteristic_fails() {
        for (flag, name) in [
            (0x0080, "FORCE_INTEGRITY"),
            (0x0100, "NX_COMPAT"),
            (0x0040, "DYNAMIC_BASE"),
        ] {
            let mut image = Image::good();
            let at = OPT + 70;
            let value = u16::from_le_bytes([image.bytes[at], image.bytes[at + 1]]) & !flag;
            put16(&mut image.bytes, at, value);
            image.fix_checksum();
            image.assert_fails(name);
        }
    }

    #[test]
    fn a_stale_checksum_fails() {
        let mut image = Image::good();
        image.bytes[TEXT.0 + 3] ^= 0x5a;
        image.assert_fails("checksum");
    }

    #[test]
    fn a_writable_executable_section_fails() {
        let mut image = Image::good();
        put32(&mut image.bytes, SECTIONS + 36, 0xE000_0020);
        image.fix_checksum();
        image.assert_fails("writable and executable");
    }

    #[test]
    fn missing_relocations_fail() {
        let mut image = Image::good();
        put32(&mut image.bytes, OPT + 112 + 5 * 8 + 4, 0);
        image.fix_checksum();
        image.assert_fails("relocations");
    }

    #[test]
    fn a_missing_or_foreign_pdb_record_fails() {
        let mut image = Image::new(&[("ntoskrnl.exe", &["memcpy"])], "other.pdb");
        image.fix_checksum();
        image.assert_fails("not ringside.pdb");
        let mut image = Image::good();
        put32(&mut image.bytes, OPT + 112 + 6 * 8 + 4, 0);
        put32(&mut image.bytes, OPT + 112 + 6 * 8, 0);
        image.fix_checksum();
        image.assert_fails("CodeView");
    }

    #[test]
    fn imports_from_other_dlls_fail() {
        let image = Image::new(
            &[("ntoskrnl.exe", &["memcpy"]), ("ntdll.dll", &["ZwClose"])],
            "ringside.pdb",
        );
        image.assert_fails("ZwClose from ntdll.dll");
    }

    #[test]
    fn an_abort_instruction_in_code_fails() {
        let mut image = Image::good();
        // `mov eax, 1; ud2` at the entry point.
        image.bytes[TEXT.0..TEXT.0 + 7].copy_from_slice(&[0xB8, 1, 0, 0, 0, 0x0F, 0x0B]);
        image.fix_checksum();
        image.assert_fails("ud2 at RVA 0x1005");
        let mut image = Image::good();
        image.bytes[TEXT.0..TEXT.0 + 2].copy_from_slice(&[0xCD, 0x29]);
        image.fix_checksum();
        image.assert_fails("int 29h");
        // The same bytes inside another instruction are no abort:
        // `mov eax, 0x0B0F` (B8 0F 0B 00 00).
        let mut image = Image::good();
        image.bytes[TEXT.0..TEXT.0 + 5].copy_from_slice(&[0xB8, 0x0F, 0x0B, 0, 0]);
        image.fix_checksum();
        assert_eq!(image.problems(), Vec::<String>::new());
    }

    #[test]
    fn a_kebugcheckex_import_fails() {
        let image = Image::new(
            &[("ntoskrnl.exe", &["memcpy", "KeBugCheckEx"])],
            "ringside.pdb",
        );
        image.assert_fails("panic path is reachable");
    }

    #[test]
    fn garbage_is_rejected_without_panicking() {
        assert!(check(b"MZ not really").is_err());
        assert!(check(&[]).is_err());
    }

    /// An 8-block MSF (block size 512; readers take the first 4 KiB as the
    /// header page): 0 superblock, 3 block map, 4 stream directory, 5 info
    /// stream; stream 0 empty.
    fn tiny_pdb(guid: [u8; 16]) -> Vec<u8> {
        let mut b = vec![0u8; 8 * 512];
        b[..32].copy_from_slice(b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0");
        put32(&mut b, 32, 512);
        put32(&mut b, 36, 1); // free block map
        put32(&mut b, 40, 8);
        put32(&mut b, 44, 4 * 4); // directory: count, 2 sizes, 1 block index
        put32(&mut b, 52, 3);
        put32(&mut b, 3 * 512, 4); // block map -> directory in block 4
        put32(&mut b, 4 * 512, 2); // two streams
        put32(&mut b, 4 * 512 + 4, 0);
        put32(&mut b, 4 * 512 + 8, 32); // version, signature, age, GUID, names size
        put32(&mut b, 4 * 512 + 12, 5); // stream 1 in block 5
        put32(&mut b, 5 * 512, 20000404);
        b[5 * 512 + 12..5 * 512 + 28].copy_from_slice(&guid);
        b
    }

    #[test]
    fn pdb_info_stream_guid_is_read() {
        let guid = *b"0123456789abcdef";
        assert_eq!(pdb_guid(&tiny_pdb(guid)), Ok(guid));
        let mut broken = tiny_pdb(guid);
        broken[0] = b'X';
        assert!(pdb_guid(&broken).is_err());
        let mut truncated = tiny_pdb(guid);
        truncated.truncate(5 * 512 + 20);
        assert!(pdb_guid(&truncated).is_err());
    }

    #[test]
    fn checksum_skips_its_own_field_and_adds_the_length() {
        // Two words (1, 2) and the checksum field at offset 4 (ignored).
        let data = [1u8, 0, 2, 0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(pe_checksum(&data, 4), 3 + 8);
        // Carries fold back into the low 16 bits.
        let data = [0xff, 0xff, 0x02, 0x00];
        assert_eq!(pe_checksum(&data, 100), 0x0002 + 4);
    }
}
