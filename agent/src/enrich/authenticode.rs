//! Authenticode: whether a PE image carries an intact embedded signature,
//! and who signed it: Sysmon's `Signed`, `Signature` and `SignatureStatus`
//! of image loads (event 7) and driver loads (event 6).
//!
//! The portable check, on every platform, of the signature embedded in the
//! file (the security directory's WIN_CERTIFICATE, a PKCS#7 SignedData
//! holding an `SpcIndirectDataContent`):
//! 1. the file's Authenticode digest (the image less its checksum, its
//!    security directory entry and the certificate table; `authenticode`
//!    computes it over the agent's own PE parse, [`super::pe::Image`])
//!    equals the digest the signature carries;
//! 2. the signed attributes' message digest equals the digest of that
//!    content;
//! 3. the signer certificate's RSA key verifies the signer's PKCS#1 v1.5
//!    signature over the signed attributes.
//!
//! What it does not check: the chain from the signer certificate to a
//! trusted root, validity periods, timestamps, and revocation. Off Windows
//! there is no code-signing trust store to chain to (the system's TLS
//! roots are not Microsoft's code-signing roots, and anyone can make a
//! certificate whose subject says "Microsoft Windows"), so an intact
//! signature is reported as [`Status::Intact`] (`SignatureStatus`
//! `Unverified`), never as `Valid`: a Sigma filter on `SignatureStatus:
//! Valid` then does not exclude it. Nor are catalog signatures seen (most
//! of System32 is signed in a catalog, not in the file): such a file has
//! no embedded signature. On Windows the live agent asks `WinVerifyTrust`
//! instead ([`crate::win::verify_trust`]), which does chain, revocation
//! and catalogs; see the README for how the two are combined with the
//! kernel's signing level.
//!
//! Files are hostile: every failure is a typed [`Flaw`] and an invalid
//! status, never a panic.

use authenticode::{AttributeCertificateIterator, AuthenticodeSignature, PeTrait};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{ObjectIdentifier as Oid, OctetString, UintRef};
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::Certificate;

use super::pe::Image;

/// What the check of one file found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    /// The signer certificate's display name (subject CN, else OU, else O),
    /// as soon as the signature was parsed far enough to name it.
    pub signer: Option<String>,
}

/// The state of a file's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// No embedded signature (a catalog may still sign the file).
    Unsigned,
    /// The embedded signature is intact (digest and signer's signature
    /// hold); its chain and revocation were not checked.
    Intact,
    /// `WinVerifyTrust` (Windows) accepted the signature: chain to a
    /// trusted root, revocation as the policy says.
    Valid,
    /// `WinVerifyTrust`: a certificate had expired (and no timestamp
    /// covered it).
    Expired,
    /// `WinVerifyTrust`: a certificate in the chain is revoked.
    Revoked,
    /// `WinVerifyTrust`: the chain does not end at a trusted root, or the
    /// signer is explicitly distrusted.
    Untrusted,
    /// A signature is there and does not hold, or cannot be read.
    Invalid(Flaw),
    /// A signature is there, with an algorithm this check does not
    /// implement (e.g. ECDSA): neither intact nor broken as far as we know.
    Unsupported(Flaw),
}

/// Why a signature is not intact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flaw {
    /// The PE headers do not locate the fields the digest skips.
    Headers,
    /// The attribute certificate table is out of bounds or inconsistent.
    CertificateTable(String),
    /// The first certificate is not a PKCS#7 Authenticode signature.
    Signature(String),
    /// A digest algorithm other than SHA-1, SHA-256, SHA-384, SHA-512.
    DigestAlgorithm(Oid),
    /// The file's Authenticode digest is not the one that was signed.
    DigestMismatch,
    /// The signed attributes' message digest is not that of the content.
    MessageDigestMismatch,
    /// No certificate in the signature matches the signer's identifier.
    NoSignerCertificate,
    /// The signer's key is not RSA (the OID of its algorithm).
    KeyAlgorithm(Oid),
    /// The signer's RSA key cannot be read.
    Key,
    /// The signer's signature does not verify under its key.
    BadSignature,
    /// `WinVerifyTrust` (Windows) refused the file with this result code.
    Trust(i32),
}

impl std::fmt::Display for Flaw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flaw::Headers => {
                f.write_str("the PE headers do not locate the checksum and security directory")
            }
            Flaw::CertificateTable(e) => write!(f, "attribute certificate table: {e}"),
            Flaw::Signature(e) => write!(f, "signature: {e}"),
            Flaw::DigestAlgorithm(oid) => write!(f, "unsupported digest algorithm {oid}"),
            Flaw::DigestMismatch => {
                f.write_str("the file's Authenticode digest is not the signed one")
            }
            Flaw::MessageDigestMismatch => f.write_str(
                "the signed attributes' message digest is not that of the signed content",
            ),
            Flaw::NoSignerCertificate => f.write_str("no certificate matches the signer"),
            Flaw::KeyAlgorithm(oid) => write!(f, "signer key algorithm {oid} is not RSA"),
            Flaw::Key => f.write_str("the signer's RSA key cannot be read"),
            Flaw::BadSignature => f.write_str("the signer's signature does not verify"),
            Flaw::Trust(code) => write!(f, "WinVerifyTrust returned {:#010x}", *code as u32),
        }
    }
}

impl Verdict {
    fn unsigned() -> Self {
        Verdict {
            status: Status::Unsigned,
            signer: None,
        }
    }

    /// Sysmon's `Signed` and `SignatureStatus` texts for this verdict.
    /// A signature that is broken or could not be checked counts as not
    /// signed: a rule looking for unsigned images then sees it.
    pub fn sysmon(&self) -> (&'static str, &'static str) {
        match &self.status {
            Status::Unsigned => ("false", "Unavailable"),
            Status::Intact => ("true", "Unverified"),
            Status::Valid => ("true", "Valid"),
            Status::Expired => ("true", "Expired"),
            Status::Revoked => ("true", "Revoked"),
            Status::Untrusted => ("true", "Untrusted"),
            Status::Invalid(_) => ("false", "Invalid"),
            Status::Unsupported(_) => ("false", "Unsupported"),
        }
    }
}

/// The Authenticode check of `image` (see the module documentation).
pub fn verify(image: &Image<'_>) -> Verdict {
    let signature = match first_signature(image) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Verdict::unsigned(),
        Err(flaw) => {
            return Verdict {
                status: Status::Invalid(flaw),
                signer: None,
            };
        }
    };
    let mut signer = None;
    let status = match check(image, signature, &mut signer) {
        Ok(()) => Status::Intact,
        Err(flaw @ (Flaw::DigestAlgorithm(_) | Flaw::KeyAlgorithm(_))) => Status::Unsupported(flaw),
        Err(flaw) => Status::Invalid(flaw),
    };
    Verdict { status, signer }
}

/// The DER bytes of the first attribute certificate, if there is a table.
fn first_signature<'a>(image: &'a Image<'_>) -> Result<Option<&'a [u8]>, Flaw> {
    let table = |e: authenticode::AttributeCertificateError| Flaw::CertificateTable(e.to_string());
    let Some(mut certificates) = AttributeCertificateIterator::new(image).map_err(table)? else {
        return Ok(None);
    };
    match certificates.next() {
        None => Ok(None),
        Some(Err(e)) => Err(table(e)),
        Some(Ok(certificate)) => {
            // The revision and type checks (WIN_CERT_REVISION_2_0,
            // WIN_CERT_TYPE_PKCS_SIGNED_DATA) and the SignedData's shape.
            certificate
                .get_authenticode_signature()
                .map_err(|e| Flaw::Signature(e.to_string()))?;
            Ok(Some(certificate.data))
        }
    }
}

/// Steps 1 to 3 of the module documentation; `signer` is set as soon as
/// the signer certificate is found.
fn check(image: &Image<'_>, der_bytes: &[u8], signer: &mut Option<String>) -> Result<(), Flaw> {
    let parse = |e: der::Error| Flaw::Signature(e.to_string());
    // `authenticode` checked the shape (one signer, version 1, the
    // content type); the certificates and the signer's attributes are read
    // from the same bytes with `cms`, since `authenticode`'s certificate
    // accessor panics on a signature that has none.
    let signature =
        AuthenticodeSignature::from_bytes(der_bytes).map_err(|e| Flaw::Signature(e.to_string()))?;
    // WIN_CERTIFICATE pads its data to 8 bytes: the DER ends before the
    // data does, so trailing bytes are allowed (as `authenticode` does).
    let mut reader = der::SliceReader::new(der_bytes).map_err(parse)?;
    let signed_data: SignedData = ContentInfo::decode(&mut reader)
        .map_err(parse)?
        .content
        .decode_as()
        .map_err(parse)?;
    let info = signature.signer_info();

    // 1. The file's digest, with the algorithm the content names.
    let file_hash = Hash::from_oid(&signature.digest_algorithm().oid)?;
    let digest = file_hash
        .digest(|update| authenticode::authenticode_digest(image as &dyn PeTrait, update))
        .map_err(|_| Flaw::Headers)?;
    if digest != signature.digest() {
        return Err(Flaw::DigestMismatch);
    }

    // The signer, by issuer and serial number (a version 1 SignerInfo,
    // which `authenticode` requires, has no other identifier).
    let SignerIdentifier::IssuerAndSerialNumber(id) = &info.sid else {
        return Err(Flaw::NoSignerCertificate);
    };
    let certificate = signed_data
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .find_map(|choice| match choice {
            cms::cert::CertificateChoices::Certificate(c)
                if c.tbs_certificate.serial_number == id.serial_number
                    && c.tbs_certificate.issuer == id.issuer =>
            {
                Some(c)
            }
            _ => None,
        })
        .ok_or(Flaw::NoSignerCertificate)?;
    *signer = display_name(certificate);

    // 2. What the signer signed: the DER SET OF its signed attributes,
    // whose message digest must be that of the content (Authenticode
    // hashes the SpcIndirectDataContent's value, without tag and length).
    let hash = Hash::from_oid(&info.digest_alg.oid)?;
    let content = signature.encapsulated_content().unwrap_or_default();
    let signed = match &info.signed_attrs {
        Some(attributes) => {
            let message_digest = attributes
                .iter()
                .find(|a| a.oid == MESSAGE_DIGEST)
                .and_then(|a| a.values.iter().next())
                .and_then(|v| v.decode_as::<OctetString>().ok())
                .ok_or(Flaw::MessageDigestMismatch)?;
            let want = hash.digest(|update| {
                update.update(content);
                Ok::<(), ()>(())
            });
            if want.ok().as_deref() != Some(message_digest.as_bytes()) {
                return Err(Flaw::MessageDigestMismatch);
            }
            attributes.to_der().map_err(parse)?
        }
        None => content.to_vec(),
    };

    // 3. The signer's RSA signature over it.
    let spki = &certificate.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(Flaw::KeyAlgorithm(spki.algorithm.oid));
    }
    let key = spki.subject_public_key.as_bytes().ok_or(Flaw::Key)?;
    let key = RsaPublicKey::from_der(key).map_err(|_| Flaw::Key)?;
    let key = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(key.modulus.as_bytes()),
        rsa::BoxedUint::from_be_slice_vartime(key.exponent.as_bytes()),
    )
    .map_err(|_| Flaw::Key)?;
    let hashed = hash
        .digest(|update| {
            update.update(&signed);
            Ok::<(), ()>(())
        })
        .map_err(|()| Flaw::BadSignature)?;
    key.verify(hash.pkcs1v15(), &hashed, info.signature.as_bytes())
        .map_err(|_| Flaw::BadSignature)
}

/// PKCS#1's RSAPublicKey (RFC 8017, A.1.1).
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    exponent: UintRef<'a>,
}

const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
const COMMON_NAME: Oid = Oid::new_unwrap("2.5.4.3");
const ORGANIZATIONAL_UNIT: Oid = Oid::new_unwrap("2.5.4.11");
const ORGANIZATION: Oid = Oid::new_unwrap("2.5.4.10");

/// The digest algorithms Authenticode uses.
#[derive(Clone, Copy, Debug)]
enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(oid: &Oid) -> Result<Self, Flaw> {
        Ok(match oid.to_string().as_str() {
            "1.3.14.3.2.26" => Hash::Sha1,
            "2.16.840.1.101.3.4.2.1" => Hash::Sha256,
            "2.16.840.1.101.3.4.2.2" => Hash::Sha384,
            "2.16.840.1.101.3.4.2.3" => Hash::Sha512,
            _ => return Err(Flaw::DigestAlgorithm(*oid)),
        })
    }

    /// The digest of what `feed` gives its `Update` (the trait of the
    /// `digest` version `authenticode` takes, fed into the agent's own
    /// sha1/sha2).
    fn digest<E>(
        self,
        feed: impl FnOnce(&mut dyn digest_0_10::Update) -> Result<(), E>,
    ) -> Result<Vec<u8>, E> {
        fn run<D: sha2::Digest, E>(
            feed: impl FnOnce(&mut dyn digest_0_10::Update) -> Result<(), E>,
        ) -> Result<Vec<u8>, E> {
            let mut hasher = Feed(D::new());
            feed(&mut hasher)?;
            Ok(hasher.0.finalize().to_vec())
        }
        match self {
            Hash::Sha1 => run::<sha1::Sha1, E>(feed),
            Hash::Sha256 => run::<sha2::Sha256, E>(feed),
            Hash::Sha384 => run::<sha2::Sha384, E>(feed),
            Hash::Sha512 => run::<sha2::Sha512, E>(feed),
        }
    }

    fn pkcs1v15(self) -> rsa::Pkcs1v15Sign {
        match self {
            Hash::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
            Hash::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            Hash::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
            Hash::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        }
    }
}

/// A digest 0.11 hasher behind digest 0.10's `Update`.
struct Feed<D>(D);

impl<D: sha2::Digest> digest_0_10::Update for Feed<D> {
    fn update(&mut self, data: &[u8]) {
        sha2::Digest::update(&mut self.0, data);
    }
}

/// What `CertGetNameStringW(CERT_NAME_SIMPLE_DISPLAY_TYPE)` shows, which is
/// what Sysmon writes as `Signature`: the subject's common name, else its
/// organizational unit, else its organization.
fn display_name(certificate: &Certificate) -> Option<String> {
    let subject = &certificate.tbs_certificate.subject;
    [COMMON_NAME, ORGANIZATIONAL_UNIT, ORGANIZATION]
        .iter()
        .find_map(|oid| {
            subject
                .0
                .iter()
                .flat_map(|rdn| rdn.0.iter())
                .find(|attribute| attribute.oid == *oid)
                .and_then(|attribute| directory_string(&attribute.value))
        })
}

/// Longest signer name kept, in bytes (the certificate is the file's to
/// choose; Sysmon's names are tens of characters).
const MAX_NAME_BYTES: usize = 256;

/// The text of an X.520 DirectoryString (or IA5String) value, cut to
/// [`MAX_NAME_BYTES`] at a character boundary.
fn directory_string(value: &der::Any) -> Option<String> {
    let mut text = directory_text(value)?;
    if text.len() > MAX_NAME_BYTES {
        let cut = (0..=MAX_NAME_BYTES)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(cut);
    }
    Some(text)
}

fn directory_text(value: &der::Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
        Tag::BmpString => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signer_names_are_decoded_and_bounded() {
        let any = |tag: Tag, bytes: Vec<u8>| der::Any::new(tag, bytes).expect("valid");
        let bmp = any(Tag::BmpString, vec![0x00, 0x41, 0x00, 0xe9]);
        assert_eq!(directory_string(&bmp).as_deref(), Some("Aé"));
        let printable = any(Tag::PrintableString, b"Microsoft Windows".to_vec());
        assert_eq!(
            directory_string(&printable).as_deref(),
            Some("Microsoft Windows")
        );
        // 200 two-byte characters: cut at 256 bytes, on a boundary.
        let long = any(Tag::Utf8String, "é".repeat(200).into_bytes());
        assert_eq!(directory_string(&long), Some("é".repeat(128)));
        let integer = any(Tag::Integer, vec![1]);
        assert_eq!(directory_string(&integer), None);
    }
}
