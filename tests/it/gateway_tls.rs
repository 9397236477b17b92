//! TLS termination with certificates made by rcgen, checked by a rustls client (reqwest): HTTP/2
//! by ALPN, certificate files replaced on disk are used by the next connection (and a broken
//! replacement keeps the old one), plain HTTP on the TLS port gets a clean 400, and a bad file
//! stops the start with one line naming the key and leaves nothing behind.

use crate::helpers::{Stack, TestApp, fresh_settings};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;

fn self_signed() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    (made.cert.pem(), made.signing_key.serialize_pem())
}

/// Writes both files the way a certificate tool does: a new file renamed into place.
fn install(dir: &Path, cert: &str, key: &str) {
    for (name, text) in [("key.pem", key), ("cert.pem", cert)] {
        std::fs::write(dir.join(format!("{name}.new")), text).unwrap();
        std::fs::rename(dir.join(format!("{name}.new")), dir.join(name)).unwrap();
    }
}

/// A client that trusts only `cert_pem`, reaching `localhost` at `addr`.
fn client_trusting(cert_pem: &str, addr: std::net::SocketAddr) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder().tls_backend_preconfigured(tls).resolve("localhost", addr).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_termination_with_reload() {
    let (mut settings, dir, schema) = fresh_settings(Stack::Embedded).await.unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert1, key1) = self_signed();
    install(certs.path(), &cert1, &key1);
    settings.tls_cert_file = Some(certs.path().join("cert.pem"));
    settings.tls_key_file = Some(certs.path().join("key.pem"));
    let app = TestApp::spawn_with(settings, dir, schema).await;
    let https = format!("https://localhost:{}/healthz", app.addr.port());

    let res = client_trusting(&cert1, app.addr).get(&https).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), reqwest::Version::HTTP_2, "HTTP/2 by ALPN");

    // Plain HTTP to the TLS port: a clean 400, not a hang or a reset.
    let res = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("https://"));

    // A new certificate on disk: the next connection gets it.
    let (cert2, key2) = self_signed();
    install(certs.path(), &cert2, &key2);
    assert_eq!(client_trusting(&cert2, app.addr).get(&https).send().await.unwrap().status(), 200);
    assert!(client_trusting(&cert1, app.addr).get(&https).send().await.is_err(), "the old certificate is gone");

    // A broken replacement is refused and the working certificate stays.
    install(certs.path(), "not a certificate", &key1);
    assert_eq!(client_trusting(&cert2, app.addr).get(&https).send().await.unwrap().status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificate_files_stop_the_start() {
    let (mut settings, dir, _schema) = fresh_settings(Stack::Embedded).await.unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed();
    let (_, other_key) = self_signed();
    install(certs.path(), &cert, &other_key);
    std::fs::write(certs.path().join("garbage.pem"), "-----BEGIN CERTIFICATE-----\nnope\n").unwrap();
    let data_dir = settings.data_dir.clone().unwrap();
    for (cert_file, expect) in
        [("garbage.pem", "tls_cert_file"), ("missing.pem", "tls_cert_file"), ("cert.pem", "do not go together")]
    {
        settings.tls_cert_file = Some(certs.path().join(cert_file));
        settings.tls_key_file = Some(certs.path().join("key.pem"));
        let config = turtlemen_config::Config::resolve(settings.clone()).unwrap();
        let err = turtlemen::app::prepare(turtlemen::app::Role::All, &config, &Default::default())
            .await
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(expect), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
    assert!(!data_dir.exists(), "nothing created");
    drop(dir);
}
