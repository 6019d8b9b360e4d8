//! Files that only their owner may read (mode 0600), replaced atomically: the contents go to a
//! temporary file next to the target, are synced, then renamed over it, so a reader sees the old
//! file or the new one and never half of one. Used for the config file that `client` edits, the
//! hashes of the secrets generated on first start, and the self-signed TLS key.
//!
//! A leaf: plain `std::fs`, no knowledge of what the files hold.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// Writes `contents` to `path` atomically, readable by its owner only; creates the directory.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    PrivateFile::next_to(path, contents)?.persist(path)
}

/// The directory a file is in (`.` for a bare file name).
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// A complete, synced file with mode 0600 next to the one it is to replace; removed when
/// dropped unless it was persisted. Between `next_to` and `persist` the caller may check it (the
/// CLI loads an edited config file as `serve` would).
#[derive(Debug)]
pub(crate) struct PrivateFile {
    path: PathBuf,
    persisted: bool,
}

impl PrivateFile {
    /// Writes `contents` to a new hidden file `.{name}.{random}.tmp` in the directory of
    /// `target`, which is created if missing.
    pub(crate) fn next_to(target: &Path, contents: &[u8]) -> io::Result<PrivateFile> {
        let file_name = target.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a file name", target.display()),
            )
        })?;
        let dir = directory_of(target);
        fs::create_dir_all(dir)?;
        let mut suffix = [0u8; 6];
        getrandom::fill(&mut suffix).map_err(io::Error::other)?;
        let path = dir.join(format!(
            ".{}.{}.tmp",
            file_name.to_string_lossy(),
            hex::encode(suffix)
        ));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path)?;
        let temporary = PrivateFile {
            path,
            persisted: false,
        };
        file.write_all(contents)?;
        file.sync_all()?;
        Ok(temporary)
    }

    /// Where the temporary file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file over `target`.
    pub(crate) fn persist(mut self, target: &Path) -> io::Result<()> {
        fs::rename(&self.path, target)?;
        self.persisted = true;
        // Make the rename itself durable; the file is complete either way, so a failure here
        // is not worth an error.
        #[cfg(unix)]
        if let Ok(dir) = fs::File::open(directory_of(target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Drop for PrivateFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_file_replaces_the_old_one_whole_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("secret.txt");
        write_private(&path, b"old").unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secret.txt")]);
    }

    #[test]
    fn a_file_that_is_not_persisted_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let temporary = PrivateFile::next_to(&dir.path().join("config.toml"), b"x").unwrap();
        let path = temporary.path().to_path_buf();
        assert!(path.exists());
        drop(temporary);
        assert!(!path.exists());
    }
}
