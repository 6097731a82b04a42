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
async fn a_blob_changed_between_checking_and_serving_is_not_served() {
    let dir = scratch("toctou");
    let store = BlobStore::local(&dir).unwrap();
    let stored = store.put(chunks(vec![Ok(b"n\n12\n")]), 100).await.unwrap();
    let verified = store.verify_version(&stored.sha256).await.unwrap();
    assert_eq!(verified.size, 5);
    // Unchanged: the pinned read serves the bytes that were checked.
    let bytes: Vec<Bytes> = store
        .open_verified(&stored.sha256, &verified)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(bytes.concat(), b"n\n12\n");
    // Replaced after the check (same size, other bytes): refused, not served.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(dir.join("blobs").join(&stored.sha256), b"n\n99\n").unwrap();
    let served = store.open_verified(&stored.sha256, &verified).await;
    assert!(
        matches!(served, Err(StorageError::Changed(_))),
        "{:?}",
        served.map(|_| ())
    );
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
async fn an_upload_too_large_to_copy_is_streamed_into_place() {
    let dir = scratch("stream");
    // Anything over 4 bytes goes the way an S3 upload over 5 GiB does.
    let store = BlobStore::local(&dir).unwrap().with_copy_limit(4);
    let stored = store
        .put(chunks(vec![Ok(b"region,"), Ok(b"count\n")]), 100)
        .await
        .unwrap();
    assert_eq!(
        stored.sha256,
        hex::encode(Sha256::digest(b"region,count\n"))
    );
    assert_eq!(store.verify(&stored.sha256).await.unwrap(), 13);
    let again = store
        .put(chunks(vec![Ok(b"region,count\n")]), 100)
        .await
        .unwrap();
    assert_eq!(again, stored);
    assert_eq!(
        (store.blobs().await.unwrap(), store.staged().await.unwrap()),
        (1, 0)
    );
    // A staged object that no longer has the hash it was uploaded with is not placed.
    let staging = ObjectPath::from("staging/changed");
    store
        .store
        .put(&staging, Bytes::from_static(b"tampered").into())
        .await
        .unwrap();
    let claimed = StoredBlob {
        sha256: hex::encode(Sha256::digest(b"original")),
        size: 8,
    };
    assert!(matches!(
        store.place(&staging, &claimed).await,
        Err(StorageError::Corrupt { .. })
    ));
    assert!(!dir.join("blobs").join(&claimed.sha256).exists());
    assert_eq!(store.blobs().await.unwrap(), 1);
}

#[test]
fn parts_are_large_enough_for_the_limit() {
    assert_eq!(part_size(1), 5 << 20);
    assert_eq!(part_size(8 << 30), 5 << 20);
    // 100 GiB needs parts over 10 MiB to fit in 10,000.
    let part = part_size(100 << 30) as u64;
    assert!(part > 10 << 20 && part * MAX_PARTS >= 100 << 30, "{part}");
}

#[test]
fn virtual_hosted_endpoints_carry_the_bucket() {
    let yaml = |extra: &str| {
        serde_yaml::from_str::<S3Config>(&format!(
            "bucket: tre-files\naccess_key_id: k\nsecret_access_key_file: /s\n{extra}"
        ))
        .unwrap()
    };
    assert_eq!(s3_endpoint(&yaml("")), None);
    assert_eq!(
        s3_endpoint(&yaml("endpoint: https://store.example.org:9000/\n")).as_deref(),
        Some("https://store.example.org:9000")
    );
    assert_eq!(
        s3_endpoint(&yaml(
            "endpoint: https://store.example.org\nvirtual_hosted_style: true\n"
        ))
        .as_deref(),
        Some("https://tre-files.store.example.org")
    );
}

#[test]
fn an_s3_store_needs_its_secret_and_a_real_ca_file() {
    let dir = scratch("s3-config");
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("secret");
    let ca = dir.join("ca.pem");
    let config = |extra: &str| {
        serde_yaml::from_str::<S3Config>(&format!(
            "bucket: tre-files\nendpoint: https://127.0.0.1:9000\naccess_key_id: k\nsecret_access_key_file: {}\n{extra}",
            secret.display()
        ))
        .unwrap()
    };
    let error = BlobStore::s3(&config("")).unwrap_err().to_string();
    assert!(
        error.contains("airlock.s3.secret_access_key_file"),
        "{error}"
    );
    std::fs::write(&secret, "s3cret\n").unwrap();
    assert_eq!(BlobStore::s3(&config("")).unwrap().kind(), "s3");
    let with_ca = config(&format!("ca_file: {}\n", ca.display()));
    let error = BlobStore::s3(&with_ca).unwrap_err().to_string();
    assert!(error.contains("airlock.s3.ca_file"), "{error}");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let error = BlobStore::s3(&with_ca).unwrap_err().to_string();
    assert!(error.contains("no PEM certificates"), "{error}");
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
