//! A private, throw-away PostgreSQL server, and the final state of the pg-app capture database.
//!
//! The fixture's SQL (`fixtures/pg-app/sql/schema.sql` then `workload.sql`) is loaded into a
//! fresh cluster once per test binary; everything the tests compare with is read from it while
//! it runs, then the server is stopped (a `Drop` guard, so also when loading fails). Tests read
//! the kept results through [`pg_app`].

use std::collections::HashMap;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::{FIXTURES, unique_name};

/// Every query a test compares with PostgreSQL's final database. The results are read while the
/// server runs; [`PgApp::query`] only answers these.
pub const PG_QUERIES: &[&str] = &[
    "SELECT COUNT(*) FROM users",
    "SELECT status, COUNT(*), SUM(amount) FROM orders GROUP BY status",
    "SELECT c_mood, COUNT(*) FROM all_types GROUP BY c_mood",
    "SELECT country, COUNT(*) FROM users GROUP BY country",
    "SELECT COUNT(*), COUNT(DISTINCT actor) FROM audit_log",
    "SELECT path, COUNT(*) FROM page_views GROUP BY path",
    "SELECT id, amount FROM orders WHERE status = 'paid'",
    "SELECT COUNT(*) FROM docs_full",
    // The body every docs row starts with (schema.sql), for checks before the workload ends.
    "SELECT string_agg(md5(i::text), '') FROM generate_series(1, 600) i",
];

/// The files of queries over the capture database that PostgreSQL answers beside
/// [`PG_QUERIES`]: joins, subqueries and set operations; top-N.
pub const FIXTURE_QUERY_FILES: &[&str] = &["queries.sql", "topn.sql"];

/// The queries of [`FIXTURE_QUERY_FILES`] in `fixtures/pg-app/sql`, one per statement,
/// comment lines left out.
pub fn fixture_queries() -> Vec<String> {
    FIXTURE_QUERY_FILES
        .iter()
        .flat_map(|file| {
            let path = Path::new(FIXTURES).join("sql").join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            text.split(';')
                .map(|q| {
                    let lines: Vec<&str> = q
                        .lines()
                        .filter(|l| !l.trim_start().starts_with("--"))
                        .collect();
                    lines.join("\n").trim().to_string()
                })
                .filter(|q| !q.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Tables of the capture database that the tests read row by row.
const TABLES: &[&str] = &[
    "users",
    "orders",
    "all_types",
    "docs",
    "docs_full",
    "marker",
    "audit_log",
    "page_views",
];

/// How a PostgreSQL column's values are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Real,
    Double,
    /// `numeric(p,s)`: a fixed scale.
    Numeric,
    /// Unconstrained `numeric`: each value has its own scale.
    NumericVar,
    Bool,
    Text,
    /// `char(n)`: blank-padded text.
    Char,
    Enum,
    Uuid,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Bytea,
    Json,
    Array,
    Interval,
    /// MySQL's `TIME`: a signed duration as MySQL prints it (`-838:59:59.000`).
    Duration,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// As `format_type` prints it, e.g. `numeric(12,2)`, `time(3) without time zone`.
    pub pg_type: String,
    pub kind: Kind,
}

/// A table's final rows, each value as text (`None` = SQL NULL).
#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    pub rows: Vec<Map<String, Value>>,
}

/// What PostgreSQL holds after schema.sql and workload.sql.
pub struct PgApp {
    queries: HashMap<String, Vec<Vec<String>>>,
    tables: HashMap<String, Table>,
    seed_tables: HashMap<String, Table>,
}

impl PgApp {
    /// The rows of one of [`PG_QUERIES`], as `psql -At -F '|' -P null=NULL` prints them.
    pub fn query(&self, sql: &str) -> &[Vec<String>] {
        self.queries
            .get(sql)
            .unwrap_or_else(|| panic!("{sql:?} is not in support::postgres::PG_QUERIES"))
    }

    /// A table after workload.sql.
    pub fn table(&self, name: &str) -> &Table {
        self.tables
            .get(name)
            .unwrap_or_else(|| panic!("table {name} is not in support::postgres::TABLES"))
    }

    /// A table after schema.sql only: what Debezium's initial snapshot read (`op: r`).
    pub fn seed_table(&self, name: &str) -> &Table {
        self.seed_tables
            .get(name)
            .unwrap_or_else(|| panic!("table {name} is not in support::postgres::TABLES"))
    }
}

/// The final state of the pg-app database, loaded once per test binary.
pub fn pg_app() -> &'static PgApp {
    static APP: OnceLock<PgApp> = OnceLock::new();
    APP.get_or_init(|| {
        let server = PgServer::start();
        let sql = Path::new(FIXTURES).join("sql");
        server.psql_file("postgres", &sql.join("schema.sql"));
        let seed_tables = TABLES
            .iter()
            .map(|t| (t.to_string(), server.table("app", t)))
            .collect();
        server.psql_file("app", &sql.join("workload.sql"));
        let queries = PG_QUERIES
            .iter()
            .map(|q| q.to_string())
            .chain(fixture_queries())
            .map(|q| {
                let rows = server.rows("app", &q);
                (q, rows)
            })
            .collect();
        let tables = TABLES
            .iter()
            .map(|t| (t.to_string(), server.table("app", t)))
            .collect();
        PgApp {
            queries,
            tables,
            seed_tables,
        }
        // `server` is dropped here: the cluster is stopped and removed.
    })
}

/// A running PostgreSQL cluster in a temporary directory; stopped and removed on drop.
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Server programs run as the `postgres` OS user when the tests run as root (initdb refuses
    /// to run as root).
    as_postgres: bool,
    running: bool,
}

impl PgServer {
    pub fn start() -> PgServer {
        PgServer::start_with("", |_, _| {})
    }

    /// A server that logical-replication clients (Debezium) can stream changes from.
    pub fn start_logical() -> PgServer {
        PgServer::start_logical_with("")
    }

    /// A logical-replication server with `extra_options` (`-c name=value` each) besides.
    pub fn start_logical_with(extra_options: &str) -> PgServer {
        PgServer::start_with(&logical(extra_options), |_, _| {})
    }

    /// A logical-replication server that takes TCP connections over TLS only, with the
    /// server certificate of `certificates`: the `postgres` superuser logs in without a
    /// password (for the test's own psql), `cert_user` with a client certificate the root
    /// signed, every other role with SCRAM-SHA-256.
    pub fn start_tls(certificates: &Certificates) -> PgServer {
        let options = logical(&format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c ssl_ca_file={}",
            certificates.server_cert.display(),
            certificates.server_key.display(),
            certificates.root.display()
        ));
        PgServer::start_with(&options, |server, data| {
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\n\
                 hostssl all postgres 127.0.0.1/32 trust\n\
                 hostssl all cert_user 127.0.0.1/32 cert\n\
                 hostssl all all 127.0.0.1/32 scram-sha-256\n\
                 hostnossl all all 127.0.0.1/32 reject\n",
            )
            .expect("writing pg_hba.conf");
            if server.as_postgres {
                must(
                    Command::new("chown")
                        .args(["-R", "postgres:"])
                        .arg(data.join("pg_hba.conf"))
                        .arg(&certificates.dir),
                    "chown of pg_hba.conf and the certificates",
                );
            }
        })
    }

    /// `extra_options` are added to the server's command line (`-c name=value` each);
    /// `prepare` runs once the cluster's data directory (its second argument) exists.
    fn start_with(extra_options: &str, prepare: impl FnOnce(&PgServer, &Path)) -> PgServer {
        let bin = pg_bin_dir();
        let as_postgres = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let dir = std::env::temp_dir().join(unique_name("eddy-pg"));
        std::fs::create_dir_all(&dir).expect("creating the PostgreSQL temp dir");
        let mut server = PgServer {
            dir,
            bin,
            port: 0,
            as_postgres,
            running: false,
        };
        if as_postgres {
            must(
                Command::new("chown").arg("postgres:").arg(&server.dir),
                "chown of the PostgreSQL temp dir to the postgres user",
            );
        }
        let data = server.dir.join("data");
        let mut initdb = server.server_command("initdb");
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        must(&mut initdb, "initdb");
        prepare(&server, &data);
        // A port that was free a moment ago can be taken before the server binds it: try again
        // with another one.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let options = format!(
                "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                 -c timezone=UTC -c datestyle=ISO,MDY -c max_connections=20{extra_options}",
                server.dir.display()
            );
            let mut start = server.server_command("pg_ctl");
            start
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(server.dir.join("server.log"))
                .args(["-w", "-t", "120", "-o", &options, "start"]);
            let out = start.output().expect("running pg_ctl start");
            if out.status.success() {
                server.port = port;
                server.running = true;
                return server;
            }
            let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
            last_error = format!("{}\n{log}", describe(&out));
        }
        panic!("PostgreSQL did not start:\n{last_error}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A server program (initdb, pg_ctl), run as the postgres user when we are root.
    fn server_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn psql(&self, db: &str) -> Command {
        let mut c = Command::new(self.bin.join("psql"));
        c.args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .args(["-p", &self.port.to_string(), "-d", db])
        .env("PGTZ", "UTC")
        .env("PGDATESTYLE", "ISO,MDY")
        .env_remove("PGOPTIONS")
        .stdin(Stdio::null());
        c
    }

    pub fn psql_file(&self, db: &str, file: &Path) {
        let mut c = self.psql(db);
        c.arg("-f").arg(file);
        must(&mut c, &format!("psql -f {}", file.display()));
    }

    /// Rows of a query as `psql -At -F '|' -P null=NULL` prints them.
    pub fn rows(&self, db: &str, sql: &str) -> Vec<Vec<String>> {
        let mut c = self.psql(db);
        c.args(["-At", "-F", "|", "-P", "null=NULL", "-c", sql]);
        let out = must(&mut c, sql);
        String::from_utf8(out.stdout)
            .expect("psql output is UTF-8")
            .lines()
            .map(|l| l.split('|').map(str::to_string).collect())
            .collect()
    }

    /// One row per line of a query that returns a single text column.
    fn lines(&self, db: &str, sql: &str) -> Vec<String> {
        let mut c = self.psql(db);
        c.args(["-At", "-c", sql]);
        let out = must(&mut c, sql);
        String::from_utf8(out.stdout)
            .expect("psql output is UTF-8")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// A table's columns and rows, each value as text in a form that keeps everything the
    /// comparison needs (see [`text_expression`]).
    pub fn table(&self, db: &str, table: &str) -> Table {
        let columns: Vec<Column> = self
            .rows(
                db,
                &format!(
                    "SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typtype, t.typcategory \
                     FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                     WHERE a.attrelid = 'public.{table}'::regclass AND a.attnum > 0 \
                     AND NOT a.attisdropped ORDER BY a.attnum"
                ),
            )
            .into_iter()
            .map(|r| Column {
                kind: kind_of(&r[1], &r[2], &r[3]),
                name: r[0].clone(),
                pg_type: r[1].clone(),
            })
            .collect();
        let primary_key = self.lines(
            db,
            &format!(
                "SELECT a.attname FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indrelid = 'public.{table}'::regclass AND i.indisprimary ORDER BY a.attnum"
            ),
        );
        let select: Vec<String> = columns
            .iter()
            .map(|c| format!("{} AS {}", text_expression(c), c.name))
            .collect();
        let rows = self
            .lines(
                db,
                &format!(
                    "SELECT row_to_json(x)::text FROM (SELECT {} FROM {table}) x",
                    select.join(", ")
                ),
            )
            .iter()
            .map(|l| match serde_json::from_str::<Value>(l) {
                Ok(Value::Object(m)) => m,
                other => panic!("row_to_json gave {other:?} for {l}"),
            })
            .collect();
        Table {
            columns,
            primary_key,
            rows,
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let mut stop = self.server_command("pg_ctl");
            stop.arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "fast", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = stop.status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The command-line options of a logical-replication server, with `extra_options`.
fn logical(extra_options: &str) -> String {
    format!(
        " -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 {extra_options}"
    )
}

/// Certificates made with the `openssl` command for one test: a root, a server
/// certificate it signed for `localhost` (not for `127.0.0.1`), a client certificate it
/// signed for the role `cert_user`, and a second root that signed nothing the server shows.
pub struct Certificates {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub other_root: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Certificates {
    /// Makes them in `dir`, which must exist.
    pub fn new(dir: &Path) -> Certificates {
        let dir = dir.join("tls");
        std::fs::create_dir_all(&dir).expect("creating the certificates' directory");
        let openssl = |args: &[&str]| {
            must(
                Command::new("openssl").args(args).current_dir(&dir),
                &format!("openssl {}", args.join(" ")),
            )
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for (name, subject) in [
            ("root", "/CN=eddy test root"),
            ("other_root", "/CN=eddy other root"),
        ] {
            let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
            openssl(
                &[
                    &[
                        "req", "-x509", "-days", "2", "-subj", subject, "-keyout", &key, "-out",
                        &cert,
                    ][..],
                    &ec[..],
                    &[
                        "-addext",
                        "basicConstraints=critical,CA:TRUE",
                        "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign",
                    ][..],
                ]
                .concat(),
            );
        }
        for (name, subject, extensions) in [
            (
                "server",
                "/CN=localhost",
                "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
            ),
            ("client", "/CN=cert_user", "extendedKeyUsage=clientAuth\n"),
        ] {
            let (key, request, ext, cert) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.ext"),
                format!("{name}.crt"),
            );
            openssl(
                &[
                    &["req", "-subj", subject, "-keyout", &key, "-out", &request][..],
                    &ec[..],
                ]
                .concat(),
            );
            std::fs::write(dir.join(&ext), extensions).expect("writing a certificate's extensions");
            openssl(&[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &request,
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-CAcreateserial",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ]);
        }
        let mut permissions = std::fs::metadata(dir.join("server.key"))
            .unwrap()
            .permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o600);
        std::fs::set_permissions(dir.join("server.key"), permissions).unwrap();
        Certificates {
            root: dir.join("root.pem"),
            other_root: dir.join("other_root.pem"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
            dir,
        }
    }
}

/// The value of a column as text: the type's own text form, except where that loses what the
/// comparison needs (`char(n)::text` drops the padding; arrays are easier to read as JSON).
fn text_expression(c: &Column) -> String {
    match c.kind {
        Kind::Char => format!("to_json({}) #>> '{{}}'", c.name),
        Kind::Array => format!("array_to_json({})::text", c.name),
        _ => format!("{}::text", c.name),
    }
}

fn kind_of(pg_type: &str, typtype: &str, category: &str) -> Kind {
    if category == "A" {
        return Kind::Array;
    }
    if typtype == "e" {
        return Kind::Enum;
    }
    match pg_type {
        "smallint" | "integer" | "bigint" => Kind::Int,
        "real" => Kind::Real,
        "double precision" => Kind::Double,
        "numeric" => Kind::NumericVar,
        t if t.starts_with("numeric(") => Kind::Numeric,
        "boolean" => Kind::Bool,
        "text" => Kind::Text,
        t if t.starts_with("character varying") => Kind::Text,
        t if t.starts_with("character") => Kind::Char,
        "uuid" => Kind::Uuid,
        "date" => Kind::Date,
        "bytea" => Kind::Bytea,
        "json" | "jsonb" => Kind::Json,
        "interval" => Kind::Interval,
        t if t.starts_with("timestamp")
            && t.ends_with("with time zone")
            && !t.contains("without") =>
        {
            Kind::TimestampTz
        }
        t if t.starts_with("timestamp") => Kind::Timestamp,
        t if t.starts_with("time") && t.ends_with("without time zone") => Kind::Time,
        other => panic!("the tests do not know how to compare PostgreSQL type {other}"),
    }
}

/// The bin directory of the newest PostgreSQL under /usr/lib/postgresql (Debian's layout), or
/// `$EDDY_PG_BIN`.
fn pg_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EDDY_PG_BIN") {
        return PathBuf::from(dir);
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "no PostgreSQL server found: expected /usr/lib/postgresql/<version>/bin/initdb \
             (Debian's `postgresql` package) or EDDY_PG_BIN"
        ),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free local port")
        .port()
}

fn must(command: &mut Command, what: &str) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {command:?}: {e}"));
    if !out.status.success() {
        panic!("{what} failed: {}", describe(&out));
    }
    out
}

fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
