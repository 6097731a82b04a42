//! Airlock files, content-addressed by SHA-256 in an object store (a local directory by default).
//!
//! An upload streams into `staging/<random>` while it is hashed and counted (never held whole in
//! memory), and only a complete upload within its size limit is copied to `blobs/<sha256>`: a
//! failed, oversized or cut-off upload leaves nothing under `blobs/`. Reads are verified against
//! the hash before anything is served or released.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the file is larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    #[error(
        "stored file {sha256} does not match its hash (it reads as {actual}); it will not be served"
    )]
    Corrupt { sha256: String, actual: String },
    #[error("no stored file {0}")]
    NotFound(String),
    #[error("`{0}` is not a SHA-256 in hex")]
    BadHash(String),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
}

/// What a finished upload stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    pub sha256: String,
    pub size: u64,
}

#[derive(Clone, Debug)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
}

fn blob_path(sha256: &str) -> Result<ObjectPath, StorageError> {
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(StorageError::BadHash(sha256.to_string()));
    }
    Ok(ObjectPath::from(format!("blobs/{sha256}")))
}

impl BlobStore {
    /// A store in a local directory (created if missing).
    pub fn local(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StorageError::Store(object_store::Error::Generic {
                store: "local",
                source: Box::new(e),
            })
        })?;
        Ok(Self::new(Arc::new(LocalFileSystem::new_with_prefix(dir)?)))
    }

    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Stores what `body` yields, refusing more than `limit` bytes.
    pub async fn put<E: std::fmt::Display>(
        &self,
        body: impl Stream<Item = Result<Bytes, E>>,
        limit: u64,
    ) -> Result<StoredBlob, StorageError> {
        let staging = ObjectPath::from(format!(
            "staging/{}",
            crate::identity::session::random_token()
        ));
        let mut upload = WriteMultipart::new(self.store.put_multipart(&staging).await?);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    let _ = upload.abort().await;
                    return Err(StorageError::Interrupted(error.to_string()));
                }
            };
            size += chunk.len() as u64;
            if size > limit {
                let _ = upload.abort().await;
                return Err(StorageError::TooLarge { limit });
            }
            hasher.update(&chunk);
            // Waits for part uploads to drain, so memory stays bounded by a few parts.
            upload.wait_for_capacity(2).await?;
            upload.write(&chunk);
        }
        upload.finish().await?;
        let sha256 = hex::encode(hasher.finalize());
        let target = blob_path(&sha256)?;
        // The same content may be stored already (content addressing): keep the first copy.
        match self.store.copy_if_not_exists(&staging, &target).await {
            Ok(()) | Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(error) => {
                let _ = self.store.delete(&staging).await;
                return Err(error.into());
            }
        }
        self.store.delete(&staging).await?;
        Ok(StoredBlob { sha256, size })
    }

    /// Reads the whole blob once to check it still has its hash; returns its size.
    pub async fn verify(&self, sha256: &str) -> Result<u64, StorageError> {
        let mut stream = self.open(sha256).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.try_next().await? {
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        let actual = hex::encode(hasher.finalize());
        if actual != sha256 {
            return Err(StorageError::Corrupt {
                sha256: sha256.to_string(),
                actual,
            });
        }
        Ok(size)
    }

    /// The blob's bytes as a stream (call [`Self::verify`] first when serving or releasing).
    pub async fn open(
        &self,
        sha256: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, object_store::Error>> + use<>, StorageError> {
        let path = blob_path(sha256)?;
        match self.store.get(&path).await {
            Ok(found) => Ok(found.into_stream()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(StorageError::NotFound(sha256.to_string()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Whether anything is left in staging (a crash mid-upload); for tests and housekeeping.
    pub async fn staged(&self) -> Result<usize, StorageError> {
        Ok(self
            .store
            .list(Some(&ObjectPath::from("staging")))
            .try_collect::<Vec<_>>()
            .await?
            .len())
    }

    /// The number of stored blobs.
    pub async fn blobs(&self) -> Result<usize, StorageError> {
        Ok(self
            .store
            .list(Some(&ObjectPath::from("blobs")))
            .try_collect::<Vec<_>>()
            .await?
            .len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("trellis-blobs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn chunks(
        parts: Vec<Result<&'static [u8], &'static str>>,
    ) -> impl Stream<Item = Result<Bytes, &'static str>> {
        futures::stream::iter(parts.into_iter().map(|p| p.map(Bytes::from_static)))
    }

    #[tokio::test]
    async fn a_complete_upload_is_stored_under_its_hash_once() {
        let dir = scratch("put");
        let store = BlobStore::local(&dir).unwrap();
        let stored = store
            .put(chunks(vec![Ok(b"count,"), Ok(b"12\n")]), 100)
            .await
            .unwrap();
        assert_eq!(stored.size, 9);
        assert_eq!(stored.sha256, hex::encode(Sha256::digest(b"count,12\n")));
        assert!(dir.join("blobs").join(&stored.sha256).exists());
        // The same bytes again: the same blob, not a second copy.
        let again = store
            .put(chunks(vec![Ok(b"count,12\n")]), 100)
            .await
            .unwrap();
        assert_eq!(again, stored);
        assert_eq!(store.blobs().await.unwrap(), 1);
        assert_eq!(store.staged().await.unwrap(), 0);
        assert_eq!(store.verify(&stored.sha256).await.unwrap(), 9);
        let bytes: Vec<Bytes> = store
            .open(&stored.sha256)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(bytes.concat(), b"count,12\n");
    }

    #[tokio::test]
    async fn oversized_and_cut_off_uploads_leave_nothing() {
        let dir = scratch("fail");
        let store = BlobStore::local(&dir).unwrap();
        let too_big = store
            .put(chunks(vec![Ok(b"0123456789"), Ok(b"x")]), 10)
            .await;
        assert!(
            matches!(too_big, Err(StorageError::TooLarge { limit: 10 })),
            "{too_big:?}"
        );
        let cut = store
            .put(chunks(vec![Ok(b"partial"), Err("connection reset")]), 100)
            .await;
        assert!(
            matches!(&cut, Err(StorageError::Interrupted(why)) if why.contains("connection reset")),
            "{cut:?}"
        );
        assert_eq!(store.blobs().await.unwrap(), 0);
        assert_eq!(store.staged().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_changed_blob_is_refused() {
        let dir = scratch("corrupt");
        let store = BlobStore::local(&dir).unwrap();
        let stored = store
            .put(chunks(vec![Ok(b"a,b\n1,2\n")]), 100)
            .await
            .unwrap();
        std::fs::write(dir.join("blobs").join(&stored.sha256), b"a,b\n1,3\n").unwrap();
        assert!(matches!(
            store.verify(&stored.sha256).await,
            Err(StorageError::Corrupt { .. })
        ));
        std::fs::remove_file(dir.join("blobs").join(&stored.sha256)).unwrap();
        assert!(matches!(
            store.verify(&stored.sha256).await,
            Err(StorageError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn only_hashes_name_blobs() {
        let store = BlobStore::local(&scratch("names")).unwrap();
        for bad in ["../etc/passwd", "ABC", &"g".repeat(64), ""] {
            assert!(
                matches!(store.verify(bad).await, Err(StorageError::BadHash(_))),
                "{bad}"
            );
        }
    }
}
