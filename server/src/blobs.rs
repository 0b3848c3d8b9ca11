//! Blob storage for photos and voice notes, behind [`BlobStore`] so an object store (S3-compatible,
//! `blobs_s3.rs`) can replace the local folder. Blobs are named by their SHA-256 and immutable once
//! verified; uploads in progress are staged under a key (evidence hash, rendition, blob hash)
//! and survive a restart, so a device resumes from the staged length.
//!
//! [`FsBlobStore`], the default, lives beside the SQLite file:
//!
//! ```text
//! <data>/blobs/ab/abcdef…(64 hex)        verified blobs, read-only
//! <data>/blobs/staging/<sha>.<rendition>.<blob>.part   uploads in progress
//! ```
//!
//! [`crate::blobs_s3::S3BlobStore`] keeps the same layout in a bucket; [`open_blob_store`] picks
//! one from the `--blobs` URL.
//!
//! No upload state lives in a process: what decides an upload's offset is the store itself, and
//! two requests appending at one offset (on one server instance or two sharing the store) are
//! settled there — one appends, the other gets [`ServerError::Conflict`] and is told where the
//! upload stands. The folder store settles them with an exclusive lock on the staging file
//! (`flock`), which holds between processes on one machine (and on network file systems with
//! working locks); the S3 store with a conditional create of each chunk object.

use crate::error::{ServerError, ServerResult};
use fenlei_core::protocol::media::{MediaRendition, is_sha256_hex};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Where an upload in progress is staged: one staging per device and file, so no device sees,
/// resumes or spoils another's upload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StagingKey {
    /// The evidence hash (SHA-256 of the original).
    pub sha256: String,
    pub rendition: MediaRendition,
    /// The SHA-256 the staged bytes must have.
    pub blob: String,
    /// The uploading device (a lower-case UUID); empty only for store-level tools and tests.
    pub device: String,
}

impl StagingKey {
    /// A staging without a device (store-level tools and tests). Checks both hashes are
    /// lower-case hex (they become file names).
    pub fn new(sha256: &str, rendition: MediaRendition, blob: &str) -> ServerResult<StagingKey> {
        if !is_sha256_hex(sha256) || !is_sha256_hex(blob) {
            return Err(ServerError::BadRequest(
                "hashes must be 64 lower-case hex digits".into(),
            ));
        }
        if rendition == MediaRendition::Original && sha256 != blob {
            return Err(ServerError::BadRequest(
                "an original's blob hash is its evidence hash".into(),
            ));
        }
        Ok(StagingKey {
            sha256: sha256.into(),
            rendition,
            blob: blob.into(),
            device: String::new(),
        })
    }

    /// The staging of `device`'s upload of this file. Only enrolled devices (UUIDs) upload.
    pub fn for_device(
        sha256: &str,
        rendition: MediaRendition,
        blob: &str,
        device: &str,
    ) -> ServerResult<StagingKey> {
        let mut key = StagingKey::new(sha256, rendition, blob)?;
        if !is_device_id(device) {
            return Err(ServerError::Forbidden(
                "media uploads come from enrolled devices".into(),
            ));
        }
        key.device = device.to_string();
        Ok(key)
    }

    /// `<sha>.<rendition>.<blob>[.<device>]`: the staging's name in every store.
    pub(crate) fn name(&self) -> String {
        let mut name = format!("{}.{}.{}", self.sha256, self.rendition.as_str(), self.blob);
        if !self.device.is_empty() {
            name.push('.');
            name.push_str(&self.device);
        }
        name
    }

    fn file_name(&self) -> String {
        format!("{}.part", self.name())
    }
}

/// Whether `s` is a device id as enrollment issues them: a hyphenated lower-case UUID (it becomes
/// part of a file name).
pub fn is_device_id(s: &str) -> bool {
    s.len() == 36
        && uuid::Uuid::parse_str(s).is_ok()
        && s.bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// How finishing a staged upload went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// Verified and kept (or the blob was already kept): its size.
    Stored(u64),
    /// The staged bytes hash to something else; they were dropped.
    HashMismatch { actual: String },
}

/// Immutable, content-addressed blobs plus resumable staging. Blocking: call it from tokio's
/// blocking pool.
pub trait BlobStore: Send + Sync + 'static {
    /// Bytes staged for `key` (0 when none).
    fn staged_len(&self, key: &StagingKey) -> ServerResult<u64>;
    /// Appends `bytes` to the staging of `key`, which must hold exactly `offset` bytes;
    /// returns the new length. Atomic against other appends to the same key, also from other
    /// processes sharing the store: when the staging does not hold `offset` bytes (another
    /// request got there first) it answers [`ServerError::Conflict`] and changes nothing.
    fn append(&self, key: &StagingKey, offset: u64, bytes: &[u8]) -> ServerResult<u64>;
    /// How many bytes the upload route gathers before each [`BlobStore::append`]: small for a
    /// file, bigger for an object store where every append is a request and an object.
    fn append_bytes(&self) -> usize {
        256 * 1024
    }
    /// Makes the staged bytes durable (a cut upload resumes from them after a crash).
    fn flush(&self, key: &StagingKey) -> ServerResult<()>;
    /// Verifies the staged bytes against `key.blob` and, when they match, keeps them as the
    /// immutable blob; the staging is gone afterwards either way.
    fn finish(&self, key: &StagingKey) -> ServerResult<Finished>;
    /// The size of a kept blob, if kept.
    fn has(&self, blob: &str) -> ServerResult<Option<u64>>;
    /// Reads a kept blob.
    fn open(&self, blob: &str) -> ServerResult<Option<Box<dyn Read + Send>>>;
    /// Drops the staged bytes of `key` (an upload its device cancelled); nothing staged is fine.
    fn discard(&self, key: &StagingKey) -> ServerResult<()>;
    /// Removes stagings untouched for longer than `max_age` (abandoned uploads).
    fn sweep_staging(&self, max_age: std::time::Duration) -> ServerResult<u64>;
}

/// The blob store a `--blobs` value names: none, `<data>/blobs`; a path or `file://` URL, that
/// folder; `s3://bucket[/prefix]?endpoint=…&region=…`, an S3-compatible bucket
/// ([`crate::blobs_s3::S3BlobStore::open`]).
pub fn open_blob_store(data_dir: &Path, url: Option<&str>) -> ServerResult<Box<dyn BlobStore>> {
    let url = url.map(str::trim).filter(|u| !u.is_empty());
    match url {
        None => Ok(Box::new(FsBlobStore::open(data_dir.join("blobs"))?)),
        Some(u) if u.starts_with("s3://") => Ok(Box::new(crate::blobs_s3::S3BlobStore::open(u)?)),
        Some(u) if u.starts_with("file://") => {
            let path = reqwest::Url::parse(u)
                .ok()
                .and_then(|p| p.to_file_path().ok())
                .ok_or_else(|| {
                    ServerError::BadRequest(format!("blob store URL: bad file URL {u:?}"))
                })?;
            Ok(Box::new(FsBlobStore::open(path)?))
        }
        Some(u) if !u.contains("://") => Ok(Box::new(FsBlobStore::open(u)?)),
        Some(u) => Err(ServerError::BadRequest(format!(
            "blob store URL: {:?} is neither a folder, file:// nor s3://",
            u.split("://").next().unwrap_or_default()
        ))),
    }
}

/// The local-folder blob store (the embedded default).
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    pub fn open(root: impl Into<PathBuf>) -> ServerResult<FsBlobStore> {
        let root = root.into();
        fs::create_dir_all(root.join("staging"))?;
        Ok(FsBlobStore { root })
    }

    fn staging(&self, key: &StagingKey) -> PathBuf {
        self.root.join("staging").join(key.file_name())
    }

    fn blob_path(&self, blob: &str) -> ServerResult<PathBuf> {
        if !is_sha256_hex(blob) {
            return Err(ServerError::BadRequest(
                "hashes must be 64 lower-case hex digits".into(),
            ));
        }
        Ok(self.root.join(&blob[..2]).join(blob))
    }
}

/// Takes the exclusive lock of an open staging file (released when `file` is closed) and checks
/// the path still names it: a request that waited for the lock while another finished the upload
/// (renamed the file into a blob) or dropped it must not write to that file.
fn locked_staging(file: &File, path: &Path) -> ServerResult<()> {
    use std::os::unix::fs::MetadataExt;
    file.lock()?;
    let held = file.metadata()?;
    match fs::metadata(path) {
        Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => Ok(()),
        Ok(_) => Err(ServerError::Conflict(
            "the staging was replaced by another request".into(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ServerError::Conflict(
            "the staging was finished by another request".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

fn sync_dir(dir: &Path) -> ServerResult<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

impl BlobStore for FsBlobStore {
    fn staged_len(&self, key: &StagingKey) -> ServerResult<u64> {
        match fs::metadata(self.staging(key)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    fn append(&self, key: &StagingKey, offset: u64, bytes: &[u8]) -> ServerResult<u64> {
        let path = self.staging(key);
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        locked_staging(&file, &path)?;
        let len = file.metadata()?.len();
        if len != offset {
            return Err(ServerError::Conflict(format!(
                "staged {len} bytes, not {offset}"
            )));
        }
        file.write_all(bytes)?;
        Ok(len + bytes.len() as u64)
    }

    fn flush(&self, key: &StagingKey) -> ServerResult<()> {
        match File::open(self.staging(key)) {
            Ok(f) => Ok(f.sync_all()?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn finish(&self, key: &StagingKey) -> ServerResult<Finished> {
        let staged = self.staging(key);
        let opened = File::open(&staged).and_then(|f| {
            locked_staging(&f, &staged).map_err(|_| std::io::ErrorKind::NotFound)?;
            Ok(f)
        });
        let mut file = match opened {
            Ok(f) => f,
            // Another process finished (or dropped) it a moment ago.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return match self.has(&key.blob)? {
                    Some(len) => Ok(Finished::Stored(len)),
                    None => Err(ServerError::Conflict("nothing staged for this file".into())),
                };
            }
            Err(e) => return Err(e.into()),
        };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut len = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        let actual: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if actual != key.blob {
            fs::remove_file(&staged)?;
            return Ok(Finished::HashMismatch { actual });
        }
        let dest = self.blob_path(&key.blob)?;
        let dir = dest.parent().expect("blob paths have a parent");
        fs::create_dir_all(dir)?;
        if dest.exists() {
            // Same name, same verified content: keep the blob already there.
            fs::remove_file(&staged)?;
            return Ok(Finished::Stored(len));
        }
        file.sync_all()?;
        let mut perms = file.metadata()?.permissions();
        perms.set_readonly(true);
        fs::set_permissions(&staged, perms)?;
        fs::rename(&staged, &dest)?;
        sync_dir(dir)?;
        sync_dir(&self.root.join("staging"))?;
        Ok(Finished::Stored(len))
    }

    fn has(&self, blob: &str) -> ServerResult<Option<u64>> {
        match fs::metadata(self.blob_path(blob)?) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn open(&self, blob: &str) -> ServerResult<Option<Box<dyn Read + Send>>> {
        match File::open(self.blob_path(blob)?) {
            Ok(f) => Ok(Some(Box::new(f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn discard(&self, key: &StagingKey) -> ServerResult<()> {
        let path = self.staging(key);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        // Under the lock, and only the file the path still names (not one a racer made since).
        match locked_staging(&file, &path) {
            Ok(()) => match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.into()),
            },
            Err(ServerError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn sweep_staging(&self, max_age: std::time::Duration) -> ServerResult<u64> {
        let mut removed = 0;
        for entry in fs::read_dir(self.root.join("staging"))? {
            let entry = entry?;
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > max_age);
            if old && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn staged_upload_resumes_after_reopen_and_is_verified() {
        let dir = tempfile::tempdir().unwrap();
        let data = b"hello photo bytes".repeat(1000);
        let h = sha(&data);
        let key = StagingKey::new(&h, MediaRendition::Original, &h).unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        assert_eq!(store.append(&key, 0, &data[..5000]).unwrap(), 5000);
        store.flush(&key).unwrap();
        drop(store);
        // A restarted server sees the staged bytes and refuses a wrong offset.
        let store = FsBlobStore::open(dir.path()).unwrap();
        assert_eq!(store.staged_len(&key).unwrap(), 5000);
        assert!(store.append(&key, 4000, &data[4000..]).is_err());
        store.append(&key, 5000, &data[5000..]).unwrap();
        assert_eq!(
            store.finish(&key).unwrap(),
            Finished::Stored(data.len() as u64)
        );
        assert_eq!(store.has(&h).unwrap(), Some(data.len() as u64));
        let mut back = Vec::new();
        store
            .open(&h)
            .unwrap()
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert_eq!(store.staged_len(&key).unwrap(), 0);
    }

    #[test]
    fn wrong_bytes_are_dropped_and_bad_names_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let h = sha(b"the real thing");
        let key = StagingKey::new(&h, MediaRendition::Original, &h).unwrap();
        store.append(&key, 0, b"something else").unwrap();
        assert!(matches!(
            store.finish(&key).unwrap(),
            Finished::HashMismatch { .. }
        ));
        assert_eq!(store.staged_len(&key).unwrap(), 0);
        assert_eq!(store.has(&h).unwrap(), None);
        assert!(StagingKey::new("../../etc/passwd", MediaRendition::Thumb, &h).is_err());
        assert!(StagingKey::new(&h, MediaRendition::Original, &sha(b"x")).is_err());
        assert!(store.has("../x").is_err());
    }

    #[test]
    fn two_processes_racing_at_one_offset_keep_one() {
        // Two store handles on one folder stand for two server processes: every round, both
        // append other bytes at offset 0 at the same moment; the lock lets exactly one in.
        let dir = tempfile::tempdir().unwrap();
        let a = std::sync::Arc::new(FsBlobStore::open(dir.path()).unwrap());
        let b = std::sync::Arc::new(FsBlobStore::open(dir.path()).unwrap());
        for round in 0..40u8 {
            let genuine = vec![round; 10_000];
            let h = sha(&genuine);
            let key = StagingKey::new(&h, MediaRendition::Original, &h).unwrap();
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let racers: Vec<_> = [
                (a.clone(), genuine.clone()),
                (b.clone(), vec![!round; 7_000]),
            ]
            .into_iter()
            .map(|(store, body)| {
                let (barrier, key) = (barrier.clone(), key.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.append(&key, 0, &body)
                })
            })
            .collect();
            let results: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
            let won: Vec<u64> = results
                .iter()
                .filter_map(|r| r.as_ref().ok().copied())
                .collect();
            assert_eq!(won.len(), 1, "round {round}: {results:?}");
            assert!(
                results
                    .iter()
                    .any(|r| matches!(r, Err(ServerError::Conflict(_))))
            );
            assert_eq!(a.staged_len(&key).unwrap(), won[0]);
            let finished = b.finish(&key).unwrap();
            if won[0] == 10_000 {
                assert_eq!(finished, Finished::Stored(10_000));
            } else {
                assert!(matches!(finished, Finished::HashMismatch { .. }));
            }
        }
    }

    #[test]
    fn an_append_waiting_while_another_finishes_does_not_touch_the_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let data = b"verified".repeat(100);
        let h = sha(&data);
        let key = StagingKey::new(&h, MediaRendition::Original, &h).unwrap();
        store.append(&key, 0, &data).unwrap();
        // A second process opened the staging file, then the upload was finished (renamed into
        // the blob) before it got the lock.
        let stale = OpenOptions::new()
            .append(true)
            .open(store.staging(&key))
            .unwrap();
        assert_eq!(store.finish(&key).unwrap(), Finished::Stored(800));
        assert!(matches!(
            locked_staging(&stale, &store.staging(&key)),
            Err(ServerError::Conflict(_))
        ));
        // Finishing again (a racer that came second) answers with the kept blob.
        assert_eq!(store.finish(&key).unwrap(), Finished::Stored(800));
        assert_eq!(store.has(&h).unwrap(), Some(800));
    }

    #[test]
    fn each_device_stages_on_its_own_and_discards_only_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let h = sha(b"one photo");
        let a = "0192f000-0000-7000-8000-00000000000a";
        let b = "0192f000-0000-7000-8000-00000000000b";
        let ka = StagingKey::for_device(&h, MediaRendition::Original, &h, a).unwrap();
        let kb = StagingKey::for_device(&h, MediaRendition::Original, &h, b).unwrap();
        store.append(&ka, 0, b"one ").unwrap();
        assert_eq!(store.staged_len(&kb).unwrap(), 0);
        store.append(&kb, 0, b"x").unwrap();
        store.discard(&kb).unwrap();
        store.discard(&kb).unwrap();
        assert_eq!(
            (
                store.staged_len(&ka).unwrap(),
                store.staged_len(&kb).unwrap()
            ),
            (4, 0)
        );
        // Only enrolled devices' ids name a staging.
        for bad in [
            "web:123",
            "../x",
            "0192F000-0000-7000-8000-00000000000A",
            "",
        ] {
            assert!(matches!(
                StagingKey::for_device(&h, MediaRendition::Original, &h, bad),
                Err(ServerError::Forbidden(_))
            ));
        }
    }

    #[test]
    fn blob_store_urls() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        assert!(open_blob_store(data, None).is_ok());
        assert!(data.join("blobs/staging").is_dir());
        let other = data.join("elsewhere");
        assert!(open_blob_store(data, Some(other.to_str().unwrap())).is_ok());
        assert!(other.join("staging").is_dir());
        let url = format!("file://{}", data.join("third").display());
        assert!(open_blob_store(data, Some(&url)).is_ok());
        for bad in [
            "ftp://host/x",
            "s3://",
            "s3://bucket?endpoint=http://203.0.113.5:9000",
            "s3://bucket?endpoint=ftp://127.0.0.1:9000",
            "s3://bucket?secret=1",
            "s3://bucket?endpoint=http://localhost.example.org:9000",
        ] {
            match open_blob_store(data, Some(bad)) {
                Err(ServerError::BadRequest(m)) => assert!(m.starts_with("blob store URL"), "{m}"),
                Err(e) => panic!("{bad}: {e:?}"),
                Ok(_) => panic!("{bad} accepted"),
            }
        }
    }
}
