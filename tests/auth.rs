//! `eddy serve`'s credentials end to end: the admin token generated at first start is
//! printed once on stdout and kept only as a hash (0600); environment tokens survive a
//! restart and never reach the log; `--auth none` says loudly that anyone may do anything;
//! `--tls-cert`/`--tls-key` serve the API over HTTPS only.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TempDir;
use crate::support::kafka::{free_port, wait_for_port};
use crate::support::postgres::Certificates;

/// `eddy serve` on `port` over `data`, stdout and stderr into `log`'s two files.
fn serve(port: u16, data: &Path, log: &Path, extra: &[&str]) -> Child {
    let file = |suffix: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log.with_extension(suffix))
            .unwrap()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["serve", "--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--brokers", "127.0.0.1:1", "--external-connectors"])
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .env_remove("EDDY_ADMIN_TOKEN")
        .env("EDDY_SECRET_KEY_FILE", data.with_extension("secret.key"))
        .stdout(Stdio::from(file("out")))
        .stderr(Stdio::from(file("err")))
        .spawn()
        .expect("starting eddy serve");
    wait_for_port(port, "eddy serve");
    child
}

fn stop(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn call(
    port: u16,
    token: Option<&str>,
    method: Method,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request =
        reqwest::blocking::Client::new().request(method, format!("http://127.0.0.1:{port}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if !form.is_empty() {
        request = request.form(form);
    }
    let response = request.send().unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let text = response.text().unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_generated_admin_token_is_shown_once_and_tokens_survive_a_restart_unlogged() {
    let dir = TempDir::new();
    let (data, log) = (dir.path().join("data"), dir.path().join("serve"));
    let port = free_port();
    let first = serve(port, &data, &log, &[]);
    let printed = std::fs::read_to_string(log.with_extension("out")).unwrap();
    let admin = printed
        .split_whitespace()
        .find(|w| w.starts_with("eddy_admin_"))
        .unwrap_or_else(|| panic!("no admin token on stdout: {printed}"))
        .to_string();
    let hash_file = data.join("admin-token.sha256");
    assert_eq!(mode(&hash_file), 0o600);
    assert!(
        !std::fs::read_to_string(&hash_file)
            .unwrap()
            .contains(&admin[11..])
    );

    let onboarding = [
        ("connectionString", "postgresql://app:pw@db:5432/app"),
        ("environmentId", "shop"),
    ];
    let (status, headers, body) = call(
        port,
        Some(&admin),
        Method::POST,
        "/createConnector",
        &onboarding,
    );
    assert_eq!(status, 201, "{body}");
    let token = body["token"]
        .as_str()
        .expect("an environment token")
        .to_string();
    assert_eq!(headers["x-eddy-token"], token.as_str());
    let tokens_file = data.join("tokens.json");
    assert_eq!(mode(&tokens_file), 0o600);
    assert!(
        !std::fs::read_to_string(&tokens_file)
            .unwrap()
            .contains(&token[22..])
    );
    stop(first);

    let second = serve(port, &data, &log, &[]);
    let printed_again = std::fs::read_to_string(log.with_extension("out")).unwrap();
    assert_eq!(
        printed_again, printed,
        "the admin token is printed at first start only"
    );
    let status_of = |token: Option<&str>, environment: &str| {
        let path = format!("/jobStatus?environmentId={environment}");
        let (status, _, body) = call(port, token, Method::GET, &path, &[]);
        (status, body["error"]["code"].as_str().map(str::to_string))
    };
    assert_eq!(
        status_of(Some(&token), "shop"),
        (404, Some("not_found".into()))
    );
    assert_eq!(
        status_of(Some(&admin), "shop"),
        (404, Some("not_found".into()))
    );
    assert_eq!(
        status_of(Some(&token), "other"),
        (403, Some("forbidden".into()))
    );
    assert_eq!(
        status_of(None, "shop"),
        (401, Some("missing_credential".into()))
    );
    let (status, _, health) = call(port, None, Method::GET, "/healthz", &[]);
    assert_eq!((status, health), (200, json!({"status": "ok"})));
    stop(second);
    let logged = std::fs::read_to_string(log.with_extension("err")).unwrap();
    assert!(logged.contains("eddy serve ready"), "{logged}");
    for secret in [&admin, &token] {
        assert!(
            !logged.contains(&secret[secret.len() - 64..]),
            "a token in the log"
        );
    }
}

#[test]
fn auth_none_warns_at_start_and_lets_anyone_in() {
    let dir = TempDir::new();
    let (data, log) = (dir.path().join("data"), dir.path().join("serve"));
    let port = free_port();
    let server = serve(port, &data, &log, &["--auth", "none"]);
    let (status, _, jobs) = call(port, None, Method::GET, "/v1/jobs", &[]);
    stop(server);
    assert_eq!((status, jobs), (200, json!([])));
    let logged = std::fs::read_to_string(log.with_extension("err")).unwrap();
    assert!(
        logged.contains("AUTHENTICATION IS OFF (--auth none)"),
        "{logged}"
    );
    assert!(
        !data.join("admin-token.sha256").exists(),
        "no admin token without auth"
    );
}

/// `GET path` over HTTPS to `localhost:port`, trusting only the certificates in `root`:
/// the answer, or why the connection failed.
fn get_over_tls(port: u16, root: &Path, path: &str) -> Result<String, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(root).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        // The server may close without TLS's close_notify; what arrived is the answer.
        let _ = tls.read_to_end(&mut answer).await;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    })
}

#[test]
fn tls_cert_and_key_serve_https_only_and_a_sighup_reloads_them() {
    let dir = TempDir::new();
    let (data, log) = (dir.path().join("data"), dir.path().join("serve"));
    let [first, second] = ["first", "second"].map(|name| {
        let place = dir.path().join(name);
        std::fs::create_dir_all(&place).unwrap();
        Certificates::new(&place)
    });
    let (cert, key) = (dir.path().join("api.crt"), dir.path().join("api.key"));
    let install = |certificates: &Certificates| {
        std::fs::copy(&certificates.server_cert, &cert).unwrap();
        std::fs::copy(&certificates.server_key, &key).unwrap();
    };
    install(&first);
    let port = free_port();
    let child = serve(
        port,
        &data,
        &log,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );

    let answer = get_over_tls(port, &first.root, "/healthz").unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // (Both roots are named alike, so the check fails on the signature.)
    let refused = get_over_tls(port, &second.root, "/healthz").unwrap_err();
    assert!(refused.contains("invalid peer certificate"), "{refused}");

    // Plain HTTP on the same port is not answered.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    std::io::Write::write_all(
        &mut plain,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut answer);
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");

    // A renewed certificate: installed, then SIGHUP.
    install(&second);
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while get_over_tls(port, &second.root, "/healthz").is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate was not served after SIGHUP"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let answer = get_over_tls(port, &second.root, "/healthz").unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(get_over_tls(port, &first.root, "/healthz").is_err());
    stop(child);
    let logged = std::fs::read_to_string(log.with_extension("err")).unwrap();
    assert!(logged.contains("reloaded the TLS certificate"), "{logged}");
}
