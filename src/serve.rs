//! `eddy serve`: the job service on :7000, reading and writing Kafka.
//!
//! Each setting comes from the command line, else the environment (`EDDY_…`), else the
//! config file (`--config`, TOML with the same names), else its default.
//!
//! Authentication is on unless `--auth none`: the admin credential comes from
//! `EDDY_ADMIN_TOKEN` or the config file's `admin-token`, else it is generated at first
//! start, printed once on stdout (not in the log) and kept only as a hash.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum_server::tls_rustls::RustlsConfig;
use clap::Args;
use eddy_server::auth::{Admin, Auth, TokenStore};
use eddy_server::connect::ConnectClient;
use eddy_server::job_logs::{self, JobLogLayer};
use eddy_server::sealed::SecretKey;
use eddy_server::{EdgeOptions, Service, Settings, Supervisor, callers_of, with_edge};
use serde::Deserialize;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Whether callers must authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// `Authorization: Bearer` with the admin credential or an environment's token.
    Token,
    /// No authentication: every caller is the admin. For local use only.
    None,
}

#[derive(Args, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServeArgs {
    /// A TOML file with any of these settings (`port = 7000`, `brokers = "…"`, …).
    #[arg(long, env = "EDDY_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// The HTTP port [default: 7000].
    #[arg(long, env = "EDDY_PORT")]
    port: Option<u16>,
    /// The address to listen on [default: 0.0.0.0].
    #[arg(long, env = "EDDY_BIND")]
    bind: Option<IpAddr>,
    /// Kafka bootstrap servers [default: localhost:9092].
    #[arg(long, env = "EDDY_BROKERS")]
    brokers: Option<String>,
    /// Kafka Connect's REST URL; without it PostgreSQL connectors are Eddy's own, run in
    /// this process (MySQL connectors are then `unmanaged`).
    #[arg(long, env = "EDDY_CONNECT_URL")]
    connect_url: Option<String>,
    /// Without Kafka Connect, start no connector either: Debezium runs elsewhere and
    /// writes the topics jobs read (connectors are `unmanaged`).
    #[arg(long, env = "EDDY_EXTERNAL_CONNECTORS")]
    #[serde(default)]
    external_connectors: bool,
    /// Where job definitions and checkpoints live [default: ./eddy-data].
    #[arg(long, env = "EDDY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Milliseconds between checkpoints [default: 5000].
    #[arg(long, env = "EDDY_CHECKPOINT_INTERVAL_MS")]
    checkpoint_interval_ms: Option<u64>,
    /// Records per micro-batch at most [default: 10000].
    #[arg(long, env = "EDDY_BATCH_MAX")]
    batch_max: Option<usize>,
    /// Milliseconds a micro-batch waits for records at most [default: 100].
    #[arg(long, env = "EDDY_LINGER_MS")]
    linger_ms: Option<u64>,
    /// Bytes of a refused record's key, and of its value, that its dead letter keeps; the
    /// rest is cut, with an `eddy.truncated.key|value` header giving the original size
    /// [default: 65536].
    #[arg(long, env = "EDDY_DEAD_LETTER_MAX_BYTES")]
    dead_letter_max_bytes: Option<usize>,
    /// Times a batch may fail a job before the record causing it is found, dead-lettered
    /// and skipped (`poisonPills` in the job's status) [default: 3].
    #[arg(long, env = "EDDY_POISON_ATTEMPTS", value_parser = clap::value_parser!(u32).range(1..))]
    poison_attempts: Option<u32>,
    /// Threads decoding each job's batch of at least 512 records (the batch is the same
    /// whatever the number, so are the results) [default: 2].
    #[arg(long, env = "EDDY_DECODE_THREADS", value_parser = clap::value_parser!(u8).range(1..=64))]
    decode_threads: Option<u8>,
    /// `token` (callers send `Authorization: Bearer …`) or `none` (anyone may do anything;
    /// local use only) [default: token].
    #[arg(long, env = "EDDY_AUTH", value_enum)]
    auth: Option<AuthMode>,
    /// The admin credential (at least 20 characters); better given as `EDDY_ADMIN_TOKEN` or
    /// in the config file than on a command line others can list. Without it one is
    /// generated at first start.
    #[arg(long, env = "EDDY_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The secret (at least 32 characters) whose key seals what connectors keep to log in
    /// again (their passwords) under the data directory; better given as `EDDY_SECRET_KEY`
    /// than on a command line. Without it, the key file is used.
    #[arg(long, env = "EDDY_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// The file holding the secret key, generated (mode 0600) at first start when missing;
    /// keep it outside the data directory [default: ~/.config/eddy/secret.key].
    #[arg(long, env = "EDDY_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
    /// A PEM certificate chain: with `--tls-key`, the API is served over HTTPS only
    /// (re-read on SIGHUP, for a renewed certificate).
    #[arg(long, env = "EDDY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, env = "EDDY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// An origin (`https://ui.example.com`) whose pages may call the API with credentials;
    /// repeat it, or separate origins with commas. Requests from other origins are refused
    /// [default: none].
    #[arg(long = "cors-origin", env = "EDDY_CORS_ORIGINS", value_delimiter = ',')]
    #[serde(default)]
    cors_origins: Vec<String>,
    /// Milliseconds a request may take before it is answered `503 request_timeout`
    /// [default: 30000].
    #[arg(long, env = "EDDY_REQUEST_TIMEOUT_MS")]
    request_timeout_ms: Option<u64>,
    /// Requests per minute each caller (the admin, or one environment's tokens together)
    /// may make before it is answered `429 rate_limited` [default: 6000].
    #[arg(long, env = "EDDY_REQUESTS_PER_MINUTE", value_parser = clap::value_parser!(u32).range(1..))]
    requests_per_minute: Option<u32>,
    /// The config file's `[kafka]` table: librdkafka properties every Kafka client gets,
    /// for brokers that require authentication (`"security.protocol" = "SASL_PLAINTEXT"`,
    /// `"sasl.mechanism"`, `"sasl.username"`, `"sasl.password"`).
    #[arg(skip)]
    #[serde(default)]
    kafka: BTreeMap<String, String>,
}

impl ServeArgs {
    /// These settings, with the config file's filling what was not given.
    fn merged(self) -> Result<ServeArgs> {
        let Some(path) = &self.config else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let file: ServeArgs =
            toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
        Ok(ServeArgs {
            config: self.config,
            port: self.port.or(file.port),
            bind: self.bind.or(file.bind),
            brokers: self.brokers.or(file.brokers),
            connect_url: self.connect_url.or(file.connect_url),
            external_connectors: self.external_connectors || file.external_connectors,
            data_dir: self.data_dir.or(file.data_dir),
            checkpoint_interval_ms: self.checkpoint_interval_ms.or(file.checkpoint_interval_ms),
            batch_max: self.batch_max.or(file.batch_max),
            linger_ms: self.linger_ms.or(file.linger_ms),
            dead_letter_max_bytes: self.dead_letter_max_bytes.or(file.dead_letter_max_bytes),
            poison_attempts: self.poison_attempts.or(file.poison_attempts),
            decode_threads: self.decode_threads.or(file.decode_threads),
            auth: self.auth.or(file.auth),
            admin_token: self.admin_token.or(file.admin_token),
            secret_key: self.secret_key.or(file.secret_key),
            secret_key_file: self.secret_key_file.or(file.secret_key_file),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            cors_origins: if self.cors_origins.is_empty() {
                file.cors_origins
            } else {
                self.cors_origins
            },
            request_timeout_ms: self.request_timeout_ms.or(file.request_timeout_ms),
            requests_per_minute: self.requests_per_minute.or(file.requests_per_minute),
            kafka: file.kafka,
        })
    }
}

pub fn serve(args: ServeArgs) -> Result<()> {
    let args = args.merged()?;
    // Log lines go to stderr and, those of a job's thread, to the job's recent lines
    // (`GET /v1/jobs/{id}/logs`).
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(JobLogLayer::new(Arc::clone(job_logs::global())))
        .init();
    let defaults = Settings::new(
        args.brokers.as_deref().unwrap_or("localhost:9092"),
        args.data_dir.unwrap_or_else(|| "eddy-data".into()),
    );
    let settings = Settings {
        batch_max: args.batch_max.unwrap_or(defaults.batch_max),
        linger: args
            .linger_ms
            .map_or(defaults.linger, Duration::from_millis),
        checkpoint_interval: args
            .checkpoint_interval_ms
            .map_or(defaults.checkpoint_interval, Duration::from_millis),
        dead_letter_max_bytes: args
            .dead_letter_max_bytes
            .unwrap_or(defaults.dead_letter_max_bytes),
        poison_attempts: args.poison_attempts.unwrap_or(defaults.poison_attempts),
        decode_threads: args
            .decode_threads
            .map_or(defaults.decode_threads, usize::from),
        ..defaults
    };
    let address = SocketAddr::new(
        args.bind.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        args.port.unwrap_or(7000),
    );
    eddy_kafka::set_client_properties(args.kafka).context("the config file's [kafka] table")?;
    let auth = authentication(args.auth, args.admin_token.as_deref(), &settings.data_dir)?;
    let secret_key = secret_key(args.secret_key.as_deref(), args.secret_key_file)?;
    let connect = args.connect_url.as_deref().map(ConnectClient::new);
    let external_connectors = args.external_connectors;
    let edge_defaults = EdgeOptions::default();
    let edge = EdgeOptions {
        cors_origins: args.cors_origins,
        request_timeout: args
            .request_timeout_ms
            .map_or(edge_defaults.request_timeout, Duration::from_millis),
        requests_per_minute: args
            .requests_per_minute
            .unwrap_or(edge_defaults.requests_per_minute),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let tls = match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some((
                RustlsConfig::from_pem_file(&cert, &key)
                    .await
                    .with_context(|| format!("--tls-cert {} and --tls-key {}", cert.display(), key.display()))?,
                cert,
                key,
            )),
            (None, None) => None,
            _ => anyhow::bail!("tls-cert and tls-key go together: set both or neither"),
        };
        let supervisor = Supervisor::new(settings.clone())?;
        let resumed = supervisor.resume_all()?;
        let mut service = Service::new(supervisor, connect, settings.brokers.clone(), auth)
            .with_connector_store(&settings.data_dir, secret_key)?;
        if external_connectors {
            service = service.with_external_connectors();
        }
        let connectors = service.resume_connectors()?;
        let service = Arc::new(service);
        let callers = callers_of(Arc::clone(&service));
        let app = with_edge(eddy_server::router(Arc::clone(&service)), edge, callers);
        let listener = std::net::TcpListener::bind(address)
            .with_context(|| format!("listening on {address}"))?;
        listener.set_nonblocking(true)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(%address, scheme, brokers = %settings.brokers, data_dir = %settings.data_dir.display(), resumed, connectors, "eddy serve ready");
        let handle = axum_server::Handle::new();
        tokio::spawn({
            let handle = handle.clone();
            async move {
                shutdown_signal().await;
                handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
            }
        });
        let app = app.into_make_service();
        match tls {
            Some((config, cert, key)) => {
                tokio::spawn(reload_on_hangup(config.clone(), cert, key));
                axum_server::from_tcp_rustls(listener, config)?
                    .handle(handle)
                    .serve(app)
                    .await?
            }
            None => axum_server::from_tcp(listener)?.handle(handle).serve(app).await?,
        }
        tracing::info!("stopping jobs: each finishes its batch and checkpoints");
        tokio::task::spawn_blocking(move || service.supervisor().shutdown()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// The key that seals connectors' passwords: the operator's secret, else the key file's
/// (generated at first start; its place is logged then).
fn secret_key(secret: Option<&str>, file: Option<PathBuf>) -> Result<SecretKey> {
    if let Some(secret) = secret {
        return SecretKey::from_secret(secret).context("EDDY_SECRET_KEY");
    }
    let path = match file {
        Some(path) => path,
        None => {
            let config = std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
                .context("no HOME or XDG_CONFIG_HOME to keep the secret key in: set EDDY_SECRET_KEY or EDDY_SECRET_KEY_FILE")?;
            config.join("eddy/secret.key")
        }
    };
    let (key, generated) = SecretKey::stored_at(&path)?;
    if generated {
        tracing::warn!(path = %path.display(), "generated the secret key that seals connectors' passwords; keep it (and out of backups of the data directory): without it they cannot log in after a restart");
    }
    Ok(key)
}

/// How callers authenticate; says loudly when nobody has to.
fn authentication(
    mode: Option<AuthMode>,
    admin_token: Option<&str>,
    data_dir: &std::path::Path,
) -> Result<Auth> {
    if mode == Some(AuthMode::None) {
        tracing::warn!(
            "AUTHENTICATION IS OFF (--auth none): anyone who can reach this port can read, \
             create and delete every environment's jobs. Use it on your own machine only."
        );
        return Ok(Auth::off());
    }
    let admin = match admin_token {
        Some(token) => Admin::given(token).context("the admin token")?,
        None => {
            let (admin, generated) = Admin::stored_in(data_dir)?;
            if let Some(token) = generated {
                // stdout, not the log: this is the only time the token is shown.
                println!(
                    "eddy serve: generated the admin token (shown once; only its SHA-256 is \
                     kept, in {}):\n{token}",
                    data_dir.join("admin-token.sha256").display()
                );
            }
            admin
        }
    };
    Ok(Auth::with_tokens(admin, TokenStore::stored_in(data_dir)?))
}

/// How long requests in flight may take to finish once SIGTERM came.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Reads the certificate and key again on each SIGHUP; a pair that does not load is
/// logged and the one in use kept.
async fn reload_on_hangup(config: RustlsConfig, cert: PathBuf, key: PathBuf) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        return;
    };
    while hangups.recv().await.is_some() {
        match config.reload_from_pem_file(&cert, &key).await {
            Ok(()) => tracing::info!(cert = %cert.display(), "reloaded the TLS certificate"),
            Err(e) => {
                tracing::error!(cert = %cert.display(), error = %e, "cannot reload the TLS certificate; keeping the one in use")
            }
        }
    }
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM can be handled");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
