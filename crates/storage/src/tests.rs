//! The local backend end to end (a temporary folder), and S3 configuration from URLs (no
//! network).

use super::*;
use object_store::aws::AmazonS3ConfigKey;
use uuid::Uuid;

async fn local() -> (Storage, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("media").join("nested");
    let url = Url::from_directory_path(&root).unwrap();
    let storage = Storage::open(&url).await.unwrap();
    assert!(root.is_dir(), "the media folder is created");
    (storage, dir)
}

/// Deterministic, non-repeating-looking bytes.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8).collect()
}

async fn read_all(read: ObjectRead) -> Vec<u8> {
    let chunks: Vec<Bytes> = read.stream.try_collect().await.unwrap();
    chunks.concat()
}

fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.push(p.clone());
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn streams_a_multipart_write_and_reads_it_back_with_ranges() {
    let (storage, _dir) = local().await;
    let key = StorageKey::video_original(Uuid::now_v7());
    let data = pattern(2 * PART_BYTES + 12_345);
    let written = storage.put_stream(&key, data.as_slice()).await.unwrap();
    assert_eq!(written, data.len() as u64);

    let info = storage.head(&key).await.unwrap().unwrap();
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(info.key, key.as_str());

    let whole = storage.get(&key, None).await.unwrap();
    assert_eq!((whole.size, whole.range.clone()), (data.len() as u64, 0..data.len() as u64));
    assert_eq!(read_all(whole).await, data);

    let mid = storage.get(&key, Some(ByteRange::Bounded(1000..PART_BYTES as u64 + 5))).await.unwrap();
    assert_eq!(mid.range, 1000..PART_BYTES as u64 + 5);
    assert_eq!(read_all(mid).await, data[1000..PART_BYTES + 5]);

    let from = storage.get(&key, Some(ByteRange::From(data.len() as u64 - 10))).await.unwrap();
    assert_eq!(read_all(from).await, data[data.len() - 10..]);

    let last = storage.get(&key, Some(ByteRange::Last(7))).await.unwrap();
    assert_eq!(read_all(last).await, data[data.len() - 7..]);

    // An end past the object is cut to it, as HTTP does.
    let past = storage.get(&key, Some(ByteRange::Bounded(data.len() as u64 - 3..u64::MAX))).await.unwrap();
    assert_eq!(read_all(past).await, data[data.len() - 3..]);
}

#[tokio::test]
async fn a_fallback_serves_what_the_primary_lacks_and_deletes_reach_both() {
    let (primary, _a) = local().await;
    let (old, _b) = local().await;
    let video = Uuid::now_v7();
    let (key, fresh) = (StorageKey::video_original(video), StorageKey::video_poster(video));
    old.put_bytes(&key, Bytes::from_static(b"old bytes")).await.unwrap();
    let both = primary.clone().with_fallback(old.clone());

    assert_eq!(read_all(both.get(&key, None).await.unwrap()).await, b"old bytes");
    assert_eq!(read_all(both.get(&key, Some(ByteRange::From(4))).await.unwrap()).await, b"bytes");
    assert_eq!(both.head(&key).await.unwrap().map(|i| i.size), Some(9));
    assert_eq!(both.open_local(&key, None).unwrap().unwrap().size, 9);
    assert_eq!(both.readable_local_path(&key).await, old.local_path(&key));
    assert!(primary.head(&key).await.unwrap().is_none(), "reads copy nothing");

    both.put_bytes(&fresh, Bytes::from_static(b"new")).await.unwrap();
    assert!(primary.head(&fresh).await.unwrap().is_some() && old.head(&fresh).await.unwrap().is_none());
    assert_eq!(both.readable_local_path(&fresh).await, primary.local_path(&fresh));
    assert!(matches!(
        both.get(&StorageKey::video_original(Uuid::now_v7()), None).await,
        Err(StorageError::NotFound(_))
    ));

    both.delete(&key).await.unwrap();
    assert!(both.head(&key).await.unwrap().is_none(), "a deleted object does not come back");
    old.put_bytes(&key, Bytes::from_static(b"old bytes")).await.unwrap();
    both.delete_prefix(&StorageKey::video(video)).await.unwrap();
    assert!(old.head(&key).await.unwrap().is_none() && primary.head(&fresh).await.unwrap().is_none());
}

#[tokio::test]
async fn copy_missing_streams_what_is_missing_and_resumes() {
    let (from, _a) = local().await;
    let (to, _b) = local().await;
    let video = Uuid::now_v7();
    let big = pattern(PART_BYTES * 2 + 12345);
    from.put_stream(&StorageKey::video_original(video), &big[..]).await.unwrap();
    from.put_bytes(&StorageKey::video_poster(video), Bytes::from_static(b"poster")).await.unwrap();
    from.put_bytes(&StorageKey::video_storyboard_vtt(video), Bytes::new()).await.unwrap();
    // Already there with the same size: skipped; with another size: copied again.
    to.put_bytes(&StorageKey::video_poster(video), Bytes::from_static(b"POSTER")).await.unwrap();
    to.put_bytes(&StorageKey::video_storyboard_vtt(video), Bytes::from_static(b"stale")).await.unwrap();

    let report = copy::copy_missing(&from, &to, |_| {}).await.unwrap();
    assert_eq!(report, copy::CopyReport { objects: 3, copied: 2, bytes: big.len() as u64, present: 1 });
    assert_eq!(read_all(to.get(&StorageKey::video_original(video), None).await.unwrap()).await, big);
    assert_eq!(to.head(&StorageKey::video_storyboard_vtt(video)).await.unwrap().map(|i| i.size), Some(0));

    let again = copy::copy_missing(&from, &to, |_| {}).await.unwrap();
    assert_eq!(again, copy::CopyReport { objects: 3, copied: 0, bytes: 0, present: 3 });
}

#[tokio::test]
async fn bad_ranges_and_missing_objects_are_told_apart() {
    let (storage, _dir) = local().await;
    let key = StorageKey::video_original(Uuid::now_v7());
    storage.put_bytes(&key, Bytes::from_static(b"0123456789")).await.unwrap();
    for range in [ByteRange::Bounded(10..20), ByteRange::From(10), ByteRange::Bounded(5..5)] {
        let err = storage.get(&key, Some(range.clone())).await.unwrap_err();
        assert!(matches!(err, StorageError::RangeNotSatisfiable { size: 10 }), "{range:?}: {err:?}");
    }
    let missing = StorageKey::video_original(Uuid::now_v7());
    assert!(matches!(storage.get(&missing, None).await.unwrap_err(), StorageError::NotFound(_)));
    assert!(matches!(storage.get(&missing, Some(ByteRange::From(3))).await.unwrap_err(), StorageError::NotFound(_)));
    assert_eq!(storage.head(&missing).await.unwrap(), None);
    storage.delete(&missing).await.unwrap();
}

#[tokio::test]
async fn a_failed_stream_leaves_the_previous_object_and_no_debris() {
    struct Failing {
        left: usize,
    }
    impl AsyncRead for Failing {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.left == 0 {
                return std::task::Poll::Ready(Err(std::io::Error::other("client went away")));
            }
            let n = self.left.min(buf.remaining());
            buf.put_slice(&vec![7u8; n]);
            self.left -= n;
            std::task::Poll::Ready(Ok(()))
        }
    }
    let (storage, dir) = local().await;
    let video = Uuid::now_v7();
    let key = StorageKey::video_original(video);
    storage.put_bytes(&key, Bytes::from_static(b"previous")).await.unwrap();
    let err = storage.put_stream(&key, Failing { left: PART_BYTES + 100 }).await.unwrap_err();
    assert!(matches!(err, StorageError::Io(_)), "{err:?}");
    assert_eq!(read_all(storage.get(&key, None).await.unwrap()).await, b"previous");
    let files: Vec<_> = files_under(dir.path()).into_iter().filter(|p| p.is_file()).collect();
    assert_eq!(files.len(), 1, "only the previous object remains: {files:?}");
}

#[tokio::test]
async fn deleting_a_video_removes_all_of_it_and_nothing_else() {
    let (storage, dir) = local().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    for video in [a, b] {
        storage.put_stream(&StorageKey::video_original(video), &b"original"[..]).await.unwrap();
        for n in 1..=3 {
            let seg = StorageKey::video_rendition(video, 720).join(Segment::numbered("seg", n, "m4s"));
            storage.put_bytes(&seg, Bytes::from(vec![1u8; 100])).await.unwrap();
        }
        let playlist = StorageKey::video_hls(video).join(Segment::fixed("master.m3u8"));
        storage.put_bytes(&playlist, Bytes::from_static(b"#EXTM3U\n")).await.unwrap();
    }
    assert_eq!(storage.list(&StorageKey::video(a)).await.unwrap().len(), 5);

    assert_eq!(storage.delete_prefix(&StorageKey::video(a)).await.unwrap(), 5);
    assert!(storage.list(&StorageKey::video(a)).await.unwrap().is_empty());
    assert_eq!(storage.list(&StorageKey::video(b)).await.unwrap().len(), 5);
    assert_eq!(storage.delete_prefix(&StorageKey::video(a)).await.unwrap(), 0, "deleting again is a no-op");

    let root = dir.path().join("media").join("nested");
    let left: Vec<_> =
        files_under(&root).into_iter().filter(|p| p.to_string_lossy().contains(&a.to_string())).collect();
    assert!(left.is_empty(), "nothing of the deleted video stays on disk: {left:?}");
}

#[test]
fn storage_urls_parse_into_locations() {
    let loc = StorageLocation::from_url(&Url::parse("s3://media-bucket").unwrap()).unwrap();
    assert_eq!(loc, StorageLocation::S3 { bucket: "media-bucket".into(), prefix: None });
    let loc = StorageLocation::from_url(&Url::parse("s3://media-bucket/turtlemen/prod/").unwrap()).unwrap();
    assert_eq!(loc, StorageLocation::S3 { bucket: "media-bucket".into(), prefix: Some("turtlemen/prod".into()) });
    let builder = loc.s3_builder().unwrap();
    assert_eq!(builder.get_config_value(&AmazonS3ConfigKey::Bucket).as_deref(), Some("media-bucket"));

    let loc = StorageLocation::from_url(&Url::parse("file:///srv/media").unwrap()).unwrap();
    assert_eq!(loc, StorageLocation::Local { root: PathBuf::from("/srv/media") });
    assert!(loc.s3_builder().is_none());

    for bad in ["s3:///no-bucket", "http://example.com/media", "ftp://host/x"] {
        let err = StorageLocation::from_url(&Url::parse(bad).unwrap()).unwrap_err();
        assert!(matches!(err, StorageError::Config(_)), "{bad}: {err:?}");
    }
}

#[tokio::test]
async fn an_s3_store_opens_without_contacting_the_network() {
    let storage = Storage::open(&Url::parse("s3://media-bucket/prefix").unwrap()).await.unwrap();
    assert!(matches!(storage.location(), StorageLocation::S3 { bucket, .. } if bucket == "media-bucket"));
}

#[tokio::test]
async fn a_local_store_names_the_file_behind_a_key() {
    let (storage, _dir) = local().await;
    let key = StorageKey::video_original(Uuid::now_v7());
    storage.put_bytes(&key, Bytes::from_static(b"original bytes")).await.unwrap();
    let path = storage.local_path(&key).expect("a local store has paths");
    assert_eq!(std::fs::read(&path).unwrap(), b"original bytes");
    let s3 = Storage::open(&Url::parse("s3://media-bucket").unwrap()).await.unwrap();
    assert_eq!(s3.local_path(&key), None);
}

/// The S3 backend against a real S3 server: moto's (`moto_server`, from PyPI), started here on a
/// free port. Skipped when it is not installed, unless `TURTLEMEN_TEST_REQUIRE_EXTERNAL` says
/// every backend must be tested.
mod s3 {
    use super::*;
    use object_store::aws::AmazonS3Builder;
    use std::io::{Read, Write};
    use std::process::{Child, Command, Stdio};

    struct Server {
        child: Child,
        endpoint: String,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn raw_http(addr: &str, request: &str) -> Option<String> {
        let mut conn = std::net::TcpStream::connect(addr).ok()?;
        conn.write_all(request.as_bytes()).ok()?;
        let mut reply = String::new();
        conn.read_to_string(&mut reply).ok()?;
        Some(reply)
    }

    fn start() -> Option<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = match Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(_) if std::env::var_os("TURTLEMEN_TEST_REQUIRE_EXTERNAL").is_none() => return None,
            Err(e) => panic!("moto_server is required (pip install 'moto[server]'): {e}"),
        };
        let addr = format!("127.0.0.1:{port}");
        let server = Server { child, endpoint: format!("http://{addr}") };
        for _ in 0..200 {
            let created = raw_http(
                &addr,
                "PUT /media HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            if created.is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                return Some(server);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("moto_server did not come up");
    }

    #[tokio::test]
    async fn the_s3_backend_streams_ranges_lists_and_deletes() {
        let Some(server) = start() else { return };
        let builder = AmazonS3Builder::new()
            .with_endpoint(&server.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test");
        let location = StorageLocation::S3 { bucket: "media".into(), prefix: Some("site".into()) };
        let storage = Storage::open_s3(location, builder).unwrap();
        assert!(storage.local_path(&StorageKey::video_original(Uuid::nil())).is_none());

        let id = Uuid::now_v7();
        // More than two parts: a real multipart upload.
        let big: Vec<u8> = (0..(2 * PART_BYTES + 12345)).map(|i| (i % 251) as u8).collect();
        let original = StorageKey::video_original(id);
        assert_eq!(storage.put_stream(&original, big.as_slice()).await.unwrap(), big.len() as u64);
        let read = storage
            .get(&original, Some(ByteRange::Bounded(PART_BYTES as u64 - 5..PART_BYTES as u64 + 5)))
            .await
            .unwrap();
        assert_eq!(read.size, big.len() as u64);
        let got: Vec<u8> = read.stream.try_collect::<Vec<_>>().await.unwrap().concat();
        assert_eq!(got, big[PART_BYTES - 5..PART_BYTES + 5]);

        // A finished upload's file is streamed in, then removed.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("upload");
        std::fs::write(&file, b"poster bytes").unwrap();
        let poster = StorageKey::video_poster(id);
        assert_eq!(storage.put_file(&poster, &file).await.unwrap(), 12);
        assert!(!file.exists());
        assert_eq!(storage.head(&poster).await.unwrap().unwrap().size, 12);

        assert_eq!(storage.list(&StorageKey::video(id)).await.unwrap().len(), 2);
        assert!(matches!(storage.get(&StorageKey::video_storyboard(id), None).await, Err(StorageError::NotFound(_))));
        assert_eq!(storage.delete_prefix(&StorageKey::video(id)).await.unwrap(), 2);
        assert!(storage.head(&original).await.unwrap().is_none());
    }

    /// An upload staged in segments: leftovers of a dead writer beside the chain are ignored, a
    /// gap is named, and the chain joins into one object identical to the bytes sent.
    #[tokio::test]
    async fn staged_segments_join_into_the_original() {
        let Some(server) = start() else { return };
        let builder = AmazonS3Builder::new()
            .with_endpoint(&server.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test");
        let storage = Storage::open_s3(StorageLocation::S3 { bucket: "media".into(), prefix: None }, builder).unwrap();
        let id = Uuid::now_v7();
        let data: Vec<u8> = (0..(PART_BYTES + 4321)).map(|i| (i % 241) as u8).collect();
        let cut = 1000;
        // A writer that died after writing past 500 with no commit: a leftover at 500.
        storage.put_bytes(&StorageKey::upload_segment(id, 500), Bytes::from_static(b"stale")).await.unwrap();
        let mut first = storage.writer(&StorageKey::upload_segment(id, 0)).await.unwrap();
        first.write(&data[..cut]).await.unwrap();
        assert_eq!(first.finish().await.unwrap(), cut as u64);
        let len = data.len() as u64;
        assert!(
            matches!(storage.upload_chain(id, len).await, Err(StorageError::NotFound(k)) if k.ends_with("00000000000000001000"))
        );
        let mut second = storage.writer(&StorageKey::upload_segment(id, cut as u64)).await.unwrap();
        second.put(Bytes::copy_from_slice(&data[cut..])).await.unwrap();
        second.finish().await.unwrap();
        let chain = storage.upload_chain(id, len).await.unwrap();
        assert_eq!(
            chain.iter().map(|s| (s.start, s.size)).collect::<Vec<_>>(),
            [(0, cut as u64), (cut as u64, len - cut as u64)]
        );

        let original = StorageKey::video_original(id);
        assert_eq!(storage.compose(id, len, &original).await.unwrap(), len);
        let got: Vec<u8> =
            storage.get(&original, None).await.unwrap().stream.try_collect::<Vec<_>>().await.unwrap().concat();
        assert!(got == data, "the original is the bytes sent");
        assert!(storage.list(&StorageKey::upload(id)).await.unwrap().is_empty(), "segments removed");
        // Again after an interruption: already done.
        assert_eq!(storage.compose(id, len, &original).await.unwrap(), len);
        // One segment: a server-side copy.
        let single = Uuid::now_v7();
        storage.put_bytes(&StorageKey::upload_segment(single, 0), Bytes::from_static(b"whole")).await.unwrap();
        assert_eq!(storage.compose(single, 5, &StorageKey::video_original(single)).await.unwrap(), 5);
        assert_eq!(storage.head(&StorageKey::video_original(single)).await.unwrap().unwrap().size, 5);
        // Nothing staged and nothing composed: lost.
        assert!(matches!(
            storage.compose(Uuid::now_v7(), 5, &StorageKey::video_original(Uuid::now_v7())).await,
            Err(StorageError::NotFound(_))
        ));
    }
}
