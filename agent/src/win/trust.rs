//! Windows' own Authenticode verdict on an image file.
//!
//! Wraps `WinVerifyTrust` (`WINTRUST_ACTION_GENERIC_VERIFY_V2`),
//! `WTHelperProvDataFromStateData`, `WTHelperGetProvSignerFromChain` and
//! `CertGetNameStringW` (the signer's display name), and the catalog
//! lookup `CryptCATAdminAcquireContext2`,
//! `CryptCATAdminCalcHashFromFileHandle2`, `CryptCATAdminEnumCatalogFromHash`,
//! `CryptCATCatalogInfoFromContext` with their release calls: most of
//! System32 is signed in a catalog, not in the file, and counts as signed.
//!
//! Policy: the chain must end at a root the machine trusts. Revocation is
//! checked for the whole chain but the root (`WTD_REVOKE_WHOLECHAIN`,
//! `WTD_REVOCATION_CHECK_CHAIN_EXCLUDE_ROOT`) from what the machine has
//! cached only (`WTD_CACHE_ONLY_URL_RETRIEVAL`): a check never waits for
//! the network. Where the cache cannot answer (`CRYPT_E_NO_REVOCATION_CHECK`,
//! `CRYPT_E_REVOCATION_OFFLINE`), the chain alone decides: `Valid`. A
//! certificate the cache knows to be revoked gives `Revoked`.

use std::ffi::c_void;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;

use windows_sys::Win32::Foundation::{
    CERT_E_CHAINING, CERT_E_EXPIRED, CERT_E_REVOKED, CERT_E_UNTRUSTEDROOT,
    CERT_E_UNTRUSTEDTESTROOT, CRYPT_E_NO_REVOCATION_CHECK, CRYPT_E_REVOCATION_OFFLINE,
    CRYPT_E_REVOKED, GENERIC_READ, HANDLE, TRUST_E_BAD_DIGEST, TRUST_E_EXPLICIT_DISTRUST,
    TRUST_E_NOSIGNATURE, TRUST_E_SUBJECT_FORM_UNKNOWN, TRUST_E_SUBJECT_NOT_TRUSTED,
};
use windows_sys::Win32::Security::Cryptography::Catalog::{
    CATALOG_INFO, CryptCATAdminAcquireContext2, CryptCATAdminCalcHashFromFileHandle2,
    CryptCATAdminEnumCatalogFromHash, CryptCATAdminReleaseCatalogContext,
    CryptCATAdminReleaseContext, CryptCATCatalogInfoFromContext,
};
use windows_sys::Win32::Security::Cryptography::{
    CERT_NAME_SIMPLE_DISPLAY_TYPE, CertGetNameStringW,
};
use windows_sys::Win32::Security::WinTrust::{
    WINTRUST_ACTION_GENERIC_VERIFY_V2, WINTRUST_CATALOG_INFO, WINTRUST_DATA, WINTRUST_DATA_0,
    WINTRUST_FILE_INFO, WTD_CACHE_ONLY_URL_RETRIEVAL, WTD_CHOICE_CATALOG, WTD_CHOICE_FILE,
    WTD_REVOCATION_CHECK_CHAIN_EXCLUDE_ROOT, WTD_REVOKE_WHOLECHAIN, WTD_STATEACTION_CLOSE,
    WTD_STATEACTION_VERIFY, WTD_UI_NONE, WTHelperGetProvSignerFromChain,
    WTHelperProvDataFromStateData, WinVerifyTrust,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};

use super::Handle;
use crate::enrich::authenticode::{Flaw, Status, Verdict};

/// Windows' verdict on the image at `path`, given `embedded`, the portable
/// check of its embedded signature. A file with an embedded signature is
/// verified as a file; one without is looked up in the catalogs. When the
/// file cannot be opened, or no catalog holds it, `embedded` stands.
pub fn verify_trust(path: &Path, embedded: Verdict) -> Verdict {
    let wide_path: Vec<u16> = path.as_os_str().encode_wide().chain(Some(0)).collect();
    // SAFETY: `wide_path` is NUL-terminated and outlives the call; null
    // security attributes and template are allowed; the result is checked
    // by `Handle::new`.
    let raw = unsafe {
        CreateFileW(
            wide_path.as_ptr(),
            GENERIC_READ,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            std::ptr::null(),
            OPEN_EXISTING,
            0,
            std::ptr::null_mut(),
        )
    };
    let Ok(file) = Handle::new(raw) else {
        return embedded;
    };
    let answer = if embedded.status == Status::Unsigned {
        match catalog_of(&file) {
            Some(catalog) => {
                let mut info = WINTRUST_CATALOG_INFO {
                    cbStruct: size_of::<WINTRUST_CATALOG_INFO>() as u32,
                    pcwszCatalogFilePath: catalog.path.as_ptr(),
                    pcwszMemberTag: catalog.member_tag.as_ptr(),
                    pcwszMemberFilePath: wide_path.as_ptr(),
                    hMemberFile: file.0,
                    pbCalculatedFileHash: catalog.hash.as_ptr().cast_mut(),
                    cbCalculatedFileHash: catalog.hash.len() as u32,
                    hCatAdmin: catalog.admin.0,
                    ..Default::default()
                };
                win_verify_trust(
                    WTD_CHOICE_CATALOG,
                    WINTRUST_DATA_0 {
                        pCatalog: &mut info,
                    },
                )
            }
            None => return embedded,
        }
    } else {
        let mut info = WINTRUST_FILE_INFO {
            cbStruct: size_of::<WINTRUST_FILE_INFO>() as u32,
            pcwszFilePath: wide_path.as_ptr(),
            hFile: file.0,
            pgKnownSubject: std::ptr::null_mut(),
        };
        win_verify_trust(WTD_CHOICE_FILE, WINTRUST_DATA_0 { pFile: &mut info })
    };
    let (result, windows_signer) = answer;
    let status = match result {
        0 | CRYPT_E_NO_REVOCATION_CHECK | CRYPT_E_REVOCATION_OFFLINE => Status::Valid,
        CERT_E_EXPIRED => Status::Expired,
        CERT_E_REVOKED | CRYPT_E_REVOKED => Status::Revoked,
        CERT_E_UNTRUSTEDROOT
        | CERT_E_UNTRUSTEDTESTROOT
        | CERT_E_CHAINING
        | TRUST_E_EXPLICIT_DISTRUST
        | TRUST_E_SUBJECT_NOT_TRUSTED => Status::Untrusted,
        TRUST_E_BAD_DIGEST => Status::Invalid(Flaw::DigestMismatch),
        // Windows found nothing it can check (e.g. Wine's partial
        // WinTrust): the portable check stands.
        TRUST_E_NOSIGNATURE | TRUST_E_SUBJECT_FORM_UNKNOWN => return embedded,
        other => Status::Invalid(Flaw::Trust(other)),
    };
    Verdict {
        status,
        signer: embedded.signer.or(windows_signer),
    }
}

/// A catalog that holds a file's hash, with the admin context that found
/// it (released on drop).
struct Catalog {
    admin: CatAdmin,
    /// The catalog file's path, NUL-terminated.
    path: Vec<u16>,
    /// The file's hash, and as upper-case hex (the member tag), NUL-terminated.
    hash: Vec<u8>,
    member_tag: Vec<u16>,
}

/// An owned `HCATADMIN`.
///
/// # Invariants
/// `0` is a context from `CryptCATAdminAcquireContext2` that this value
/// alone releases.
struct CatAdmin(isize);

impl Drop for CatAdmin {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the context is valid and owned here.
        unsafe { CryptCATAdminReleaseContext(self.0, 0) };
    }
}

/// The catalog that lists `file`, trying SHA-256 catalogs, then SHA-1 ones
/// (older catalogs hash members with SHA-1).
fn catalog_of(file: &Handle) -> Option<Catalog> {
    ["SHA256", "SHA1"]
        .iter()
        .find_map(|algorithm| catalog_with(file, algorithm))
}

fn catalog_with(file: &Handle, algorithm: &str) -> Option<Catalog> {
    let algorithm = super::wide(algorithm);
    let mut raw = 0isize;
    // SAFETY: `raw` is ours to write; a null subsystem is the default one,
    // `algorithm` is NUL-terminated and outlives the call, a null policy
    // is allowed. The result is checked.
    let ok = unsafe {
        CryptCATAdminAcquireContext2(
            &mut raw,
            std::ptr::null(),
            algorithm.as_ptr(),
            std::ptr::null(),
            0,
        )
    };
    if ok == 0 {
        return None;
    }
    // INVARIANT: the call succeeded, so `raw` is a context we now own.
    let admin = CatAdmin(raw);
    let mut hash = vec![0u8; 64];
    let mut len = hash.len() as u32;
    // SAFETY: `file` is open for reading; `hash` holds `len` bytes, which
    // the call updates to the hash's length (64 bytes hold SHA-512).
    let ok = unsafe {
        CryptCATAdminCalcHashFromFileHandle2(admin.0, file.0, &mut len, hash.as_mut_ptr(), 0)
    };
    if ok == 0 {
        return None;
    }
    hash.truncate(len as usize);
    // SAFETY: `hash` holds `len` bytes; a null previous-catalog pointer
    // asks for the first catalog. A non-zero result is a catalog context
    // of `admin`.
    let found = unsafe {
        CryptCATAdminEnumCatalogFromHash(admin.0, hash.as_ptr(), len, 0, std::ptr::null_mut())
    };
    if found == 0 {
        return None;
    }
    let mut info = CATALOG_INFO {
        cbStruct: size_of::<CATALOG_INFO>() as u32,
        wszCatalogFile: [0; 260],
    };
    // SAFETY: `found` is a catalog context of `admin`; `info` is ours with
    // its size set.
    let ok = unsafe { CryptCATCatalogInfoFromContext(found, &mut info, 0) };
    // SAFETY: `found` came from `admin` and is released once, here.
    unsafe { CryptCATAdminReleaseCatalogContext(admin.0, found, 0) };
    if ok == 0 {
        return None;
    }
    let end = info.wszCatalogFile.iter().position(|&c| c == 0)?;
    let mut path = info.wszCatalogFile[..end].to_vec();
    path.push(0);
    let member_tag: Vec<u16> = hash
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<String>()
        .encode_utf16()
        .chain(Some(0))
        .collect();
    Some(Catalog {
        admin,
        path,
        hash,
        member_tag,
    })
}

/// Runs `WinVerifyTrust` on the subject `choice`/`subject`, then reads the
/// signer's display name from its state before closing it. Returns the
/// result code and that name.
fn win_verify_trust(choice: u32, subject: WINTRUST_DATA_0) -> (i32, Option<String>) {
    let mut data = WINTRUST_DATA {
        cbStruct: size_of::<WINTRUST_DATA>() as u32,
        dwUIChoice: WTD_UI_NONE,
        fdwRevocationChecks: WTD_REVOKE_WHOLECHAIN,
        dwUnionChoice: choice,
        Anonymous: subject,
        dwStateAction: WTD_STATEACTION_VERIFY,
        dwProvFlags: WTD_CACHE_ONLY_URL_RETRIEVAL | WTD_REVOCATION_CHECK_CHAIN_EXCLUDE_ROOT,
        ..Default::default()
    };
    let mut action = WINTRUST_ACTION_GENERIC_VERIFY_V2;
    // SAFETY: `data` is fully initialised with its size, a subject that
    // the caller keeps alive for this call and the close below, no UI;
    // `action` is ours. A null window is allowed with WTD_UI_NONE.
    let result = unsafe {
        WinVerifyTrust(
            std::ptr::null_mut(),
            &mut action,
            (&raw mut data).cast::<c_void>(),
        )
    };
    let signer = signer_name(data.hWVTStateData);
    data.dwStateAction = WTD_STATEACTION_CLOSE;
    // SAFETY: the same `data`, now asking WinTrust to free the state the
    // verify call left in `hWVTStateData` (harmless when there is none).
    unsafe {
        WinVerifyTrust(
            std::ptr::null_mut(),
            &mut action,
            (&raw mut data).cast::<c_void>(),
        )
    };
    (result, signer)
}

/// The display name of the first signer's certificate in the provider
/// state `state`, if there is one.
fn signer_name(state: HANDLE) -> Option<String> {
    if state.is_null() {
        return None;
    }
    // SAFETY: `state` is the live state handle of a WinVerifyTrust verify
    // call that has not been closed yet.
    let provider = unsafe { WTHelperProvDataFromStateData(state) };
    if provider.is_null() {
        return None;
    }
    // SAFETY: `provider` is the non-null provider data of that live state;
    // signer 0, no countersigner.
    let signer = unsafe { WTHelperGetProvSignerFromChain(provider, 0, 0, 0) };
    if signer.is_null() {
        return None;
    }
    // SAFETY: `signer` is non-null and points into the provider data,
    // which lives until the state is closed (after this function).
    let signer = unsafe { &*signer };
    if signer.csCertChain == 0 || signer.pasCertChain.is_null() {
        return None;
    }
    // SAFETY: the chain has `csCertChain` (at least 1) elements; element 0
    // is the signer's own certificate.
    let certificate = unsafe { (*signer.pasCertChain).pCert };
    if certificate.is_null() {
        return None;
    }
    let mut name = vec![0u16; 256];
    // SAFETY: `certificate` is a live CERT_CONTEXT of the provider data;
    // `name` holds the length passed; the call writes at most that many
    // UTF-16 units, NUL included, and returns how many.
    let written = unsafe {
        CertGetNameStringW(
            certificate,
            CERT_NAME_SIMPLE_DISPLAY_TYPE,
            0,
            std::ptr::null(),
            name.as_mut_ptr(),
            name.len() as u32,
        )
    };
    // `written` counts the NUL; 1 is the empty string.
    let text = name.get(..(written as usize).checked_sub(1)?)?;
    (!text.is_empty()).then(|| String::from_utf16_lossy(text))
}
