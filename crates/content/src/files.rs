//! Reading a file the agent was pointed at (a rule, a regression sample, a
//! signature, a key, an archive): opened without blocking, checked to be a
//! regular file within its size bound before anything is read, and read
//! with that bound. A FIFO, a device (`/dev/zero`), a directory or a huge
//! sparse file costs nothing and is refused with what it is.

use std::fmt;
use std::io::Read;
use std::path::Path;

/// Why a file was not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Opening or reading failed.
    Io(String),
    /// Not a regular file: what it is instead.
    NotRegular(&'static str),
    /// Larger than the bound (its size, or what was read before it grew).
    TooLarge { size: u64, limit: u64 },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular(what) => write!(f, "not a regular file (a {what})"),
            ReadError::TooLarge { size, limit } => {
                write!(f, "{size} bytes; at most {limit} are read")
            }
        }
    }
}

/// Reads `path` whole if it is a regular file of at most `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A FIFO with no writer would block the open itself.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .map_err(|e| ReadError::Io(e.to_string()))?;
    let meta = file.metadata().map_err(|e| ReadError::Io(e.to_string()))?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind(&meta)));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Io(e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    if meta.is_dir() {
        return "directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_char_device() {
            return "character device";
        }
        if t.is_block_device() {
            return "block device";
        }
        if t.is_socket() {
            return "socket";
        }
    }
    "special file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_bound_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let small = dir.path().join("a.yml");
        std::fs::write(&small, b"12345").expect("write");
        assert_eq!(read_regular(&small, 5), Ok(b"12345".to_vec()));
        assert_eq!(
            read_regular(&small, 4),
            Err(ReadError::TooLarge { size: 5, limit: 4 })
        );
        assert_eq!(
            read_regular(dir.path(), 1 << 20),
            Err(ReadError::NotRegular("directory"))
        );
        // A 2 GiB sparse file is refused from its size, without reading.
        let sparse = dir.path().join("sparse.yml");
        std::fs::File::create(&sparse)
            .and_then(|f| f.set_len(2 << 30))
            .expect("sparse");
        assert!(matches!(
            read_regular(&sparse, 1 << 20),
            Err(ReadError::TooLarge { size, .. }) if size == 2 << 30
        ));
        assert!(matches!(
            read_regular(&dir.path().join("missing"), 1),
            Err(ReadError::Io(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_and_a_device_are_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("x.sig");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        assert_eq!(read_regular(&fifo, 64), Err(ReadError::NotRegular("FIFO")));
        assert_eq!(
            read_regular(Path::new("/dev/zero"), 1 << 20),
            Err(ReadError::NotRegular("character device"))
        );
    }
}
