//! TLS to the collector (rustls): the CA that signs its certificate, an
//! optional client certificate for mutual TLS, and the name its certificate
//! must carry. Verification is always on; there is no option to turn it off.

use std::fmt;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// An established TLS connection.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// The TLS options of the network sinks.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM file of the CA certificate(s) the collector's certificate must
    /// chain to.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain and key (mutual TLS).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the collector's certificate must carry (default: HOST).
    pub server_name: Option<String>,
}

/// A TLS option that cannot be used.
#[derive(Debug)]
pub enum TlsError {
    NoCa,
    Pem {
        file: PathBuf,
        what: &'static str,
        error: String,
    },
    CertWithoutKey,
    ServerName(String),
    Config(rustls::Error),
    /// The CPU lacks instructions the TLS crypto (graviola) needs.
    Cpu(Vec<&'static str>),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::NoCa => f.write_str(
                "--tls-ca FILE is required for a TLS output: the collector's certificate is always verified",
            ),
            TlsError::Pem { file, what, error } => {
                write!(f, "{}: cannot read {what}: {error}", file.display())
            }
            TlsError::CertWithoutKey => {
                f.write_str("--tls-cert and --tls-key go together (mutual TLS needs both)")
            }
            TlsError::ServerName(name) => write!(
                f,
                "`{name}` is not a valid TLS server name (use --tls-server-name)"
            ),
            TlsError::Config(error) => write!(f, "TLS configuration: {error}"),
            TlsError::Cpu(missing) => write!(
                f,
                "this CPU lacks {} which the TLS crypto needs (x86_64 CPUs from about 2013 on have them): network outputs cannot run here",
                missing.join(", ")
            ),
        }
    }
}

impl std::error::Error for TlsError {}

fn pem_error(file: &Path, what: &'static str, error: impl fmt::Display) -> TlsError {
    TlsError::Pem {
        file: file.to_owned(),
        what,
        error: error.to_string(),
    }
}

/// What connects to one collector.
#[derive(Clone, Debug)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl TlsClient {
    /// Reads the files `options` name; `host` is the server name unless
    /// `--tls-server-name` overrides it.
    pub fn new(options: &TlsOptions, host: &str) -> Result<TlsClient, TlsError> {
        let missing = missing_cpu_features();
        if !missing.is_empty() {
            return Err(TlsError::Cpu(missing));
        }
        let ca = options.ca.as_deref().ok_or(TlsError::NoCa)?;
        let mut roots = RootCertStore::empty();
        let certs =
            CertificateDer::pem_file_iter(ca).map_err(|e| pem_error(ca, "CA certificates", e))?;
        for cert in certs {
            let cert = cert.map_err(|e| pem_error(ca, "CA certificates", e))?;
            roots
                .add(cert)
                .map_err(|e| pem_error(ca, "CA certificates", e))?;
        }
        if roots.is_empty() {
            return Err(pem_error(
                ca,
                "CA certificates",
                "no certificate in the file",
            ));
        }
        let provider = Arc::new(rustls_graviola::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_root_certificates(roots);
        let config = match (&options.cert, &options.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| pem_error(cert, "the client certificate", e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| pem_error(cert, "the client certificate", e))?;
                let key_der = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| pem_error(key, "the client key", e))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(TlsError::Config)?
            }
            _ => return Err(TlsError::CertWithoutKey),
        };
        let name = options.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| TlsError::ServerName(name.to_owned()))?;
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
        })
    }

    /// Connects to `addr` and completes the handshake, so a certificate or
    /// protocol problem is reported here, by name, not at the first write.
    pub fn connect(&self, addr: &str, timeout: Duration) -> io::Result<TlsStream> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        let mut socket = None;
        for a in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => {
                    socket = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let mut socket = socket.ok_or(last)?;
        socket.set_nodelay(true)?;
        socket.set_read_timeout(Some(timeout))?;
        socket.set_write_timeout(Some(timeout))?;
        let mut conn = ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(io::Error::other)?;
        while conn.is_handshaking() {
            if let Err(error) = conn.complete_io(&mut socket) {
                return Err(handshake_error(error));
            }
        }
        Ok(StreamOwned::new(conn, socket))
    }
}

/// Ends a connection so that the collector reads everything first: TLS
/// close_notify, our half of TCP shut, then wait for the collector to close
/// its half. Closing the socket at once would, with the collector's unread
/// TLS records (session tickets) in our receive buffer, send a reset that
/// makes the collector discard what it had not read yet: the tail of a
/// syslog/TLS stream, which has no acknowledgments to notice it.
pub fn close(stream: &mut TlsStream) -> io::Result<()> {
    use std::io::{Read, Write};
    stream.conn.send_close_notify();
    stream.flush()?;
    stream.sock.shutdown(std::net::Shutdown::Write)?;
    let mut buf = [0u8; 4096];
    // Until EOF, or the socket's read timeout.
    while stream.sock.read(&mut buf)? > 0 {}
    Ok(())
}

/// CPU features graviola asserts at its first use: checked here first, so
/// an old CPU is a clear error at start, not a panic in the sender thread.
fn missing_cpu_features() -> Vec<&'static str> {
    let mut missing = Vec::new();
    #[cfg(target_arch = "x86_64")]
    for (name, present) in [
        ("aes", std::arch::is_x86_feature_detected!("aes")),
        (
            "pclmulqdq",
            std::arch::is_x86_feature_detected!("pclmulqdq"),
        ),
        ("bmi1", std::arch::is_x86_feature_detected!("bmi1")),
        ("adx", std::arch::is_x86_feature_detected!("adx")),
        ("avx", std::arch::is_x86_feature_detected!("avx")),
        ("avx2", std::arch::is_x86_feature_detected!("avx2")),
    ] {
        if !present {
            missing.push(name);
        }
    }
    #[cfg(target_arch = "aarch64")]
    for (name, present) in [
        ("neon", std::arch::is_aarch64_feature_detected!("neon")),
        ("aes", std::arch::is_aarch64_feature_detected!("aes")),
        ("pmull", std::arch::is_aarch64_feature_detected!("pmull")),
        ("sha2", std::arch::is_aarch64_feature_detected!("sha2")),
    ] {
        if !present {
            missing.push(name);
        }
    }
    missing
}

/// The handshake's error, said in the terms of what to check.
fn handshake_error(error: io::Error) -> io::Error {
    let text = error.to_string();
    let lower = text.to_lowercase();
    let hint = if lower.contains("unknownissuer")
        || lower.contains("unknown issuer")
        || lower.contains("badsignature")
        || lower.contains("bad signature")
    {
        "the collector's certificate is not signed by --tls-ca"
    } else if lower.contains("notvalidforname") || lower.contains("not valid for name") {
        "the collector's certificate is not valid for the server name (--tls-server-name)"
    } else if text.contains("InvalidContentType")
        || text.contains("CorruptMessage")
        || error.kind() == io::ErrorKind::UnexpectedEof
        || error.kind() == io::ErrorKind::ConnectionReset
    {
        "the collector closed the connection or did not answer with TLS: is this port plaintext?"
    } else {
        "TLS handshake failed"
    };
    io::Error::new(error.kind(), format!("{hint} ({text})"))
}
