//! Loads a PE32+ kernel image the way the Windows loader does for a driver:
//! sections at their RVAs with their own protections, base relocations
//! applied for the actual load address, and the import address table bound
//! to the model's trampolines. Parsing uses the `object` crate.

use object::LittleEndian as LE;
use object::pe::{
    IMAGE_REL_BASED_ABSOLUTE, IMAGE_REL_BASED_DIR64, IMAGE_SCN_MEM_EXECUTE, IMAGE_SCN_MEM_READ,
    IMAGE_SCN_MEM_WRITE,
};
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, Import, PeFile64};

/// One imported function: which DLL, which name, and its IAT slot (RVA).
#[derive(Clone, Debug)]
pub struct ImportSlot {
    pub dll: String,
    pub name: String,
    pub iat_rva: u32,
}

/// A section as mapped.
#[derive(Clone, Debug)]
pub struct Section {
    pub name: String,
    pub rva: u32,
    pub size: u32,
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

/// The image laid out in memory (headers and sections at their RVAs),
/// relocated to `base`, IAT not yet bound.
#[derive(Debug)]
pub struct LoadedImage {
    pub base: u64,
    pub preferred_base: u64,
    pub size: u32,
    pub entry_rva: u32,
    pub headers_size: u32,
    pub memory: Vec<u8>,
    pub sections: Vec<Section>,
    pub imports: Vec<ImportSlot>,
    pub relocations_applied: usize,
}

/// Parses `data` and lays it out at `base`.
pub fn load(data: &[u8], base: u64) -> Result<LoadedImage, String> {
    let pe = PeFile64::parse(data).map_err(|e| format!("not a PE32+ image: {e}"))?;
    let nt = pe.nt_headers();
    let optional = nt.optional_header();
    let preferred_base = optional.image_base();
    let size = optional.size_of_image();
    let headers_size = optional.size_of_headers();
    let mut memory = vec![0u8; size as usize];
    let headers = data
        .get(..headers_size as usize)
        .ok_or("headers extend past the file")?;
    memory[..headers.len()].copy_from_slice(headers);

    let mut sections = Vec::new();
    for section in pe.section_table().iter() {
        let name = String::from_utf8_lossy(section.raw_name())
            .trim_end_matches('\0')
            .to_owned();
        let rva = section.virtual_address.get(LE);
        let vsize = section.virtual_size.get(LE);
        let raw_offset = section.pointer_to_raw_data.get(LE) as usize;
        let raw_size = section.size_of_raw_data.get(LE).min(vsize) as usize;
        let raw = data
            .get(raw_offset..raw_offset + raw_size)
            .ok_or_else(|| format!("section {name} raw data extends past the file"))?;
        let start = rva as usize;
        memory
            .get_mut(start..start + raw.len())
            .ok_or_else(|| format!("section {name} extends past SizeOfImage"))?
            .copy_from_slice(raw);
        let characteristics = section.characteristics.get(LE).0;
        sections.push(Section {
            name,
            rva,
            size: vsize,
            read: characteristics & IMAGE_SCN_MEM_READ.0 != 0,
            write: characteristics & IMAGE_SCN_MEM_WRITE.0 != 0,
            execute: characteristics & IMAGE_SCN_MEM_EXECUTE.0 != 0,
        });
    }

    // Base relocations: every DIR64 site gets the load delta added.
    let delta = base.wrapping_sub(preferred_base);
    let mut relocations_applied = 0;
    let table = pe.section_table();
    if let Some(mut blocks) = pe
        .data_directories()
        .relocation_blocks(data, &table)
        .map_err(|e| format!("bad relocation directory: {e}"))?
    {
        while let Some(block) = blocks
            .next()
            .map_err(|e| format!("bad relocation block: {e}"))?
        {
            for relocation in block {
                match relocation.typ {
                    IMAGE_REL_BASED_DIR64 => {
                        let at = relocation.virtual_address as usize;
                        let slot = memory.get_mut(at..at + 8).ok_or_else(|| {
                            format!("relocation at RVA {at:#x} outside the image")
                        })?;
                        let value = u64::from_le_bytes(slot.try_into().map_err(|_| "slot")?);
                        slot.copy_from_slice(&value.wrapping_add(delta).to_le_bytes());
                        relocations_applied += 1;
                    }
                    IMAGE_REL_BASED_ABSOLUTE => {}
                    other => return Err(format!("unsupported relocation type {other}")),
                }
            }
        }
    }

    let mut imports = Vec::new();
    if let Some(import_table) = pe
        .import_table()
        .map_err(|e| format!("bad import table: {e}"))?
    {
        let mut descriptors = import_table
            .descriptors()
            .map_err(|e| format!("bad import descriptors: {e}"))?;
        while let Some(descriptor) = descriptors.next().map_err(|e| format!("{e}"))? {
            let dll = String::from_utf8_lossy(
                import_table
                    .name(descriptor.name.get(LE))
                    .map_err(|e| format!("{e}"))?,
            )
            .into_owned();
            let first_thunk = descriptor.first_thunk.get(LE);
            let lookup = match descriptor.original_first_thunk.get(LE) {
                0 => first_thunk,
                rva => rva,
            };
            let mut thunks = import_table.thunks(lookup).map_err(|e| format!("{e}"))?;
            let mut index = 0u32;
            while let Some(thunk) = thunks
                .next::<object::pe::ImageNtHeaders64>()
                .map_err(|e| format!("{e}"))?
            {
                let name = match import_table
                    .import::<object::pe::ImageNtHeaders64>(thunk)
                    .map_err(|e| format!("{e}"))?
                {
                    Import::Name(_hint, name) => String::from_utf8_lossy(name).into_owned(),
                    Import::Ordinal(ordinal) => format!("#{ordinal}"),
                };
                imports.push(ImportSlot {
                    dll: dll.clone(),
                    name,
                    iat_rva: first_thunk + 8 * index,
                });
                index += 1;
            }
        }
    }

    Ok(LoadedImage {
        base,
        preferred_base,
        size,
        entry_rva: optional.address_of_entry_point(),
        headers_size,
        memory,
        sections,
        imports,
        relocations_applied,
    })
}

/// Exported symbols (name → RVA), if the image has an export directory.
pub fn exports(data: &[u8]) -> Vec<(String, u32)> {
    let Ok(pe) = PeFile64::parse(data) else {
        return Vec::new();
    };
    let Ok(Some(table)) = pe.export_table() else {
        return Vec::new();
    };
    let Ok(exports) = table.exports() else {
        return Vec::new();
    };
    exports
        .into_iter()
        .filter_map(|e| {
            let name = String::from_utf8_lossy(e.name?).into_owned();
            match e.target {
                object::read::pe::ExportTarget::Address(rva) => Some((name, rva)),
                _ => None,
            }
        })
        .collect()
}
