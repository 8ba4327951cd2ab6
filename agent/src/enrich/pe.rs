//! PE version resources (what Sysmon reports as FileVersion, Description,
//! Product, Company, OriginalFileName) and the import hash, read with
//! `pelite` from the file's bytes. Files are hostile: any parse failure
//! leaves the fields unknown.

use pelite::PeFile;
use pelite::resources::version_info::Language;

/// Version-resource strings Sysmon reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionInfo {
    pub file_version: Option<String>,
    pub description: Option<String>,
    pub product: Option<String>,
    pub company: Option<String>,
    pub original_file_name: Option<String>,
}

/// The version strings of a PE image, if it has a version resource.
pub fn version_info(pe: &PeFile<'_>) -> Option<VersionInfo> {
    let resources = pe.resources().ok()?;
    let info = resources.version_info().ok()?;
    // Sysmon takes the first translation; US English / Unicode is the usual
    // fallback when a file declares none.
    let lang = info.translation().first().copied().unwrap_or(Language {
        lang_id: 0x0409,
        charset_id: 0x04b0,
    });
    let get = |key: &str| {
        info.value(lang, key)
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

/// The import hash (Mandiant's imphash, as `pefile` computes it): MD5 over
/// `dll.function` pairs, lower case, DLL extension `.dll`/`.ocx`/`.sys`
/// removed, comma separated. Ordinal imports are written `ordN`; `pefile`
/// resolves ordinals of ws2_32/wsock32/oleaut32 to names, which this does
/// not, so those few files hash differently. `None` when there are no imports.
pub fn imphash(pe: &PeFile<'_>) -> Option<[u8; 16]> {
    use md5::Digest;
    let imports = pe.imports().ok()?;
    let mut text = String::new();
    for desc in imports {
        let Ok(dll) = desc.dll_name() else { continue };
        let dll = dll.to_string().to_ascii_lowercase();
        let stem = match dll.rsplit_once('.') {
            Some((stem, "dll" | "ocx" | "sys")) => stem.to_owned(),
            _ => dll,
        };
        let Ok(names) = desc.int() else { continue };
        for import in names.flatten() {
            if !text.is_empty() {
                text.push(',');
            }
            text.push_str(&stem);
            text.push('.');
            match import {
                pelite::pe64::imports::Import::ByName { name, .. } => {
                    text.push_str(&name.to_string().to_ascii_lowercase())
                }
                pelite::pe64::imports::Import::ByOrdinal { ord } => {
                    text.push_str(&format!("ord{ord}"))
                }
            }
        }
    }
    if text.is_empty() {
        return None;
    }
    Some(md5::Md5::digest(text.as_bytes()).into())
}
