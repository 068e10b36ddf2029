//! Small mutable files kept by key (e.g. a mirror's last good `InRelease`),
//! so that an offline build can start from them. Callers re-verify them.

use std::fs;

use sha2::{Digest, Sha256};

use crate::{Cache, CacheError};

impl Cache {
    fn index_path(&self, key: &str) -> std::path::PathBuf {
        self.index_dir()
            .join(hex::encode(Sha256::digest(key.as_bytes())))
    }

    /// The bytes last stored under `key`, if any.
    pub fn get_index(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let path = self.index_path(key);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CacheError::io(path, e)),
        }
    }

    /// Replaces what is stored under `key`, atomically (readers see the old
    /// or the new content, never a mix).
    pub fn put_index(&self, key: &str, bytes: &[u8]) -> Result<(), CacheError> {
        let tmp = self.write_temp(bytes)?;
        let dest = self.index_path(key);
        fs::rename(&tmp, &dest).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            CacheError::io(&dest, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::Cache;

    #[test]
    fn index_entries_round_trip_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let key = "http://mirror/debian/dists/bookworm/InRelease";
        assert_eq!(cache.get_index(key).unwrap(), None);
        cache.put_index(key, b"one").unwrap();
        cache.put_index(key, b"two").unwrap();
        assert_eq!(cache.get_index(key).unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(cache.get_index("other").unwrap(), None);
    }
}
