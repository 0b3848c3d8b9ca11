//! fenlei-server: the sync endpoint, device enrollment, reference data and the supervisor API
//! (docs/sync-protocol.md). Storage sits behind [`store::Storage`]; the embedded default is
//! [`store::sqlite::SqliteStorage`] (one SQLite file in the data folder).
//! docs/architecture.md says which layer may use which.
//!
//! The binary's commands (`fenlei-server --help`): `serve`, and the admin commands `init`,
//! `import-communities`, `publish-standard`, `add-user`, `assign`, `set-password`, `enroll`, `revoke-device`; `simulate` runs
//! simulated devices against a running server (the main job's demo).

pub mod actors;
pub mod blobs;
pub mod blobs_s3;
pub mod chain;
pub mod damaged;
pub mod domain;
pub mod error;
pub mod evidence_checks;
pub mod files;
pub mod http;
pub mod media;
pub mod model;
pub mod output;
pub mod planning;
pub mod reports;
pub mod serving;
pub mod session;
pub mod sim;
pub mod store;
pub mod sync;

use clap::{Parser, Subcommand};
use model::{Role, ScopeKind};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use store::traits::*;

#[derive(Parser)]
#[command(
    name = "fenlei-server",
    about = "Fenlei sync server and its admin commands"
)]
struct Cli {
    /// The data folder (database, and photo/voice-note blobs in `blobs/`).
    #[arg(long, global = true, default_value = "fenlei-data")]
    data: PathBuf,
    /// PostgreSQL instead of the SQLite file in --data: postgres://user[:password]@host[:port]/db
    /// (docs/deploy.md). Any number of server instances may share one database.
    #[arg(long, global = true, env = "FENLEI_DATABASE_URL")]
    database_url: Option<String>,
    /// Where photo and voice-note bytes live: a folder (default `<data>/blobs`) or an
    /// S3-compatible bucket, `s3://bucket[/prefix]?endpoint=https://…&region=…` with credentials
    /// from the AWS_* environment variables (docs/media-sync.md, "Object storage").
    #[arg(long, global = true, env = "FENLEI_BLOBS")]
    blobs: Option<String>,
    /// A damaged database was set aside (`fenlei-server.sqlite.corrupt-*`) and no backup was
    /// restored: create a new, empty database anyway.
    #[arg(long, global = true)]
    accept_fresh_database: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP on ADDR (port 0 picks a free port; the bound address is printed).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// Also write the bound port to this file once listening.
        #[arg(long)]
        port_file: Option<PathBuf>,
        #[command(flatten)]
        http: ServeHttpArgs,
        /// Bytes (MiB) one user's media uploads in progress may declare in all; an upload over
        /// it is refused with 507 `quota_exceeded` (docs/media-sync.md, "Staging quota").
        #[arg(long, env = "FENLEI_STAGING_QUOTA_MIB", default_value_t = 1024)]
        staging_quota_mib: u64,
        /// Media uploads one user may have in progress at once (507 `too_many_uploads`).
        #[arg(long, env = "FENLEI_MAX_OPEN_UPLOADS", default_value_t = 32)]
        max_open_uploads: u32,
        /// Hours after which an untouched upload in progress is dropped (checked hourly).
        #[arg(long, env = "FENLEI_STAGING_MAX_AGE_HOURS", default_value_t = 14 * 24)]
        staging_max_age_hours: u64,
    },
    /// Create the database; with --sample, load the sample city and standards.
    Init {
        #[arg(long)]
        sample: bool,
    },
    /// Import (or update) communities from a CSV file (docs/community-csv.md).
    ImportCommunities { file: PathBuf },
    /// Publish a standard file (docs/standard-format.md); versions are immutable.
    PublishStandard { file: PathBuf },
    /// Create or update a user.
    AddUser {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// inspector, supervisor or admin
        #[arg(long)]
        role: String,
    },
    /// Assign an inspector to a community or street, or scope a supervisor to a district or street.
    Assign {
        #[arg(long)]
        user: String,
        #[arg(long)]
        community: Option<String>,
        #[arg(long)]
        street: Option<String>,
        #[arg(long)]
        district: Option<String>,
    },
    /// Set a supervisor's or admin's dashboard password, read from FENLEI_PASSWORD or the first
    /// line of stdin (never from the command line); ends the user's web sessions.
    SetPassword { user: String },
    /// Issue a one-time enrollment code for a device of USER (valid for --hours).
    Enroll {
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
    /// Write the weekly bulletin (周通报) or monthly ranking as XLSX, CSV and HTML files into
    /// --out, as USER sees them (docs/bulletins.md).
    Report {
        /// weekly or monthly
        #[arg(long, default_value = "weekly")]
        kind: String,
        /// A day in the period (YYYY-MM-DD, UTC+8); default today.
        #[arg(long)]
        at: Option<String>,
        /// community, street or district (default: community weekly, street monthly).
        #[arg(long)]
        by: Option<String>,
        /// The supervisor or admin whose scope the report covers.
        #[arg(long)]
        user: String,
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Base URL of the server for the HTML's photo links (e.g. https://fenlei.example.org).
        #[arg(long, default_value = "")]
        base_url: String,
    },
    /// Print the communities not inspected this period and an unannounced visit plan
    /// (四不两直) per inspector, as JSON.
    Plan {
        #[arg(long)]
        user: String,
        /// week or month: the period whose coverage counts.
        #[arg(long, default_value = "month")]
        period: String,
        /// The first day of the plan (YYYY-MM-DD, UTC+8); default today.
        #[arg(long)]
        at: Option<String>,
        #[arg(long, default_value_t = 7)]
        days: u32,
        #[arg(long, default_value_t = 3)]
        per_day: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Inspectors (comma-separated); default: everyone who inspected in scope.
        #[arg(long)]
        inspectors: Option<String>,
    },
    /// Revoke a device's credential (a lost or stolen phone); its token stops working at once.
    RevokeDevice {
        #[arg(long)]
        device: String,
    },
    /// Re-check the hash chain of signed submissions (docs/tamper-evidence.md), in --data's
    /// SQLite file or at --database-url. Exits non-zero and names the first index of every
    /// altered, removed or reordered entry.
    VerifyChain {
        /// A receipt the chain must still hold: INDEX:ENTRY_HASH (e.g. from a device).
        #[arg(long)]
        expect: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run simulated devices against a running server (creates their users in the data folder).
    Simulate {
        /// The server's URL; several instances behind one database as a comma-separated list
        /// (inspector n syncs through instance n mod N, the supervisor through the last one).
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 3)]
        inspectors: u32,
        #[arg(long, default_value_t = 6)]
        inspections: u32,
        /// Spread each inspector's inspections over the past N weeks (0: all now).
        #[arg(long, default_value_t = 0)]
        weeks: u32,
        /// Where the simulated devices keep their stores.
        #[arg(long)]
        devices: Option<PathBuf>,
    },
}

/// How `serve` treats connections and clients (docs/deploy.md, "Connection limits").
#[derive(clap::Args, Debug, Clone)]
pub struct ServeHttpArgs {
    /// At most this many connections open at once (lowered to fit the open-file limit); beyond
    /// it new connections wait until one ends.
    #[arg(long, env = "FENLEI_MAX_CONNECTIONS", default_value_t = serving::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's line and headers, counted from when the server
    /// waits for them (so also the longest idle time of a keep-alive connection).
    #[arg(long, env = "FENLEI_HEADER_TIMEOUT", default_value_t = serving::DEFAULT_HEADER_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,
    /// Seconds a request body may pause between two pieces, and a client between taking two
    /// pieces of a response (per piece, never a total: slow uploads that move are never cut).
    #[arg(long, env = "FENLEI_BODY_TIMEOUT", default_value_t = serving::DEFAULT_BODY_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout: u64,
    /// A reverse proxy (IP or CIDR, repeatable or comma-separated) whose X-Forwarded-For names
    /// the client for sign-in limits. Without it X-Forwarded-For is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "FENLEI_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Development over plain HTTP only: the session cookie without `Secure`.
    #[arg(long, env = "FENLEI_INSECURE_COOKIES",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure_cookies: bool,
}

impl Default for ServeHttpArgs {
    fn default() -> Self {
        ServeHttpArgs {
            max_connections: serving::DEFAULT_MAX_CONNECTIONS,
            header_timeout: serving::DEFAULT_HEADER_TIMEOUT.as_secs(),
            body_timeout: serving::DEFAULT_BODY_TIMEOUT.as_secs(),
            trusted_proxies: Vec::new(),
            insecure_cookies: false,
        }
    }
}

/// Creates a one-time enrollment code for `user` and returns it (only its hash is stored).
pub fn issue_enrollment_code(
    storage: &dyn Storage,
    user: &str,
    hours: i64,
) -> error::ServerResult<String> {
    let code = domain::secrets::new_secret();
    storage.add_enrollment_code(
        user,
        &domain::secrets::hash_secret(&code),
        model::now() + hours.clamp(1, 24 * 30) * 3_600_000,
    )?;
    Ok(code)
}

/// The rights of `user` for a command run on the server's own machine (reports, planning).
fn cli_auth(storage: &dyn Storage, user: &str) -> error::ServerResult<model::DeviceAuth> {
    let user = storage
        .user(user)?
        .ok_or_else(|| error::ServerError::NotFound(format!("no user {user}")))?;
    if user.role == Role::Inspector {
        return Err(error::ServerError::Forbidden(
            "reports and plans are for supervisors and admins".into(),
        ));
    }
    let scope = storage.scope(&user)?;
    Ok(model::DeviceAuth {
        device_id: "cli".into(),
        user,
        scope,
    })
}

/// Loads the sample city and both sample standards.
pub fn load_sample(storage: &dyn Storage) -> error::ServerResult<u32> {
    let n = storage.import_communities_csv(fenlei_core::sample::CITY_CSV.as_bytes())?;
    storage.publish_standard(fenlei_core::sample::STANDARD_TOML)?;
    storage.publish_standard(fenlei_core::sample::STANDARD_NEXT_TOML)?;
    Ok(n)
}

/// Serves until Ctrl-C / SIGTERM.
pub fn serve(
    storage: Arc<dyn Storage>,
    addr: &str,
    port_file: Option<PathBuf>,
    http: &ServeHttpArgs,
    media_limits: model::MediaLimits,
) -> error::ServerResult<()> {
    let policy = Arc::new(serving::HttpPolicy {
        trusted_proxies: serving::HttpPolicy::parse_proxies(&http.trusted_proxies)
            .map_err(error::ServerError::BadRequest)?,
        insecure_cookies: http.insecure_cookies,
    });
    // Every connection is a file descriptor: the soft limit goes up to the hard one, and the
    // connection cap comes down to what fits.
    let open_files = serving::raise_open_files_limit()?;
    let limits = serving::ConnectionLimits {
        max_connections: serving::fit_connections(http.max_connections, open_files),
        header_timeout: std::time::Duration::from_secs(http.header_timeout),
        body_timeout: std::time::Duration::from_secs(http.body_timeout),
    };
    // Uploads abandoned for longer than the limit will not be resumed: drop their staged bytes
    // and reservations (blocking store calls, so before the runtime starts), and again every
    // hour while serving.
    let (swept, _) = media::sweep(storage.as_ref(), &media_limits)?;
    if swept > 0 {
        println!("removed {swept} abandoned partial uploads");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let router = http::router_with(storage.clone(), media_limits);
    let sweeper = storage.clone();
    let served = runtime.block_on(async move {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
            every.tick().await;
            loop {
                every.tick().await;
                let s = sweeper.clone();
                let l = media_limits;
                match tokio::task::spawn_blocking(move || media::sweep(s.as_ref(), &l)).await {
                    Ok(Ok((files, _))) if files > 0 => {
                        println!("removed {files} abandoned partial uploads")
                    }
                    Ok(Err(e)) => eprintln!("fenlei-server: sweeping partial uploads: {e}"),
                    _ => {}
                }
            }
        });
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        println!("fenlei-server listening on http://{local}");
        println!(
            "at most {} connections (open-file limit {open_files}), request heads within {} s, \
             bodies pausing at most {} s",
            limits.max_connections, http.header_timeout, http.body_timeout
        );
        if policy.insecure_cookies {
            println!("session cookies without Secure (--insecure-cookies): development only");
        }
        if let Some(f) = port_file {
            // Written whole to a temp file and renamed, so a reader never sees half a port.
            let tmp = f.with_extension("tmp");
            files::write_private(&tmp, local.port().to_string().as_bytes())?;
            std::fs::rename(&tmp, &f)?;
        }
        serving::serve_connections(listener, router, limits, policy, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
        Ok(())
    });
    // The storage is dropped here, outside the runtime: PostgreSQL's blocking clients close
    // their connections by blocking on a runtime of their own, which tokio refuses inside one
    // (the process would abort on every shutdown or start-up error).
    drop(runtime);
    drop(storage);
    served
}

fn run(cli: Cli) -> error::ServerResult<()> {
    if let Command::VerifyChain { expect, json } = &cli.command {
        // Read-only on the database as it is (SQLite file or --database-url): no migration,
        // no key creation.
        return verify_chain_command(
            &cli.data,
            cli.database_url.as_deref(),
            expect.as_deref(),
            *json,
        );
    }
    // One SQLite data folder is served by one process: the core store keeps the documents being
    // edited cached in memory, so a second process writing the same file would be overwritten
    // unseen. Several instances need PostgreSQL (docs/deploy.md). Admin commands stay allowed.
    let _serving = match (&cli.command, &cli.database_url) {
        (Command::Serve { .. }, None) => Some(claim_sqlite_folder(&cli.data)?),
        _ => None,
    };
    let sqlite = cli.database_url.is_none();
    if sqlite {
        // Never an empty database silently in place of a damaged one (server/src/damaged.rs).
        damaged::refuse_fresh_after_damage(&cli.data, cli.accept_fresh_database)?;
    }
    if let Command::Serve { .. } = &cli.command {
        files::warn_if_shared(&[
            &cli.data,
            &cli.data.join("fenlei-server.sqlite"),
            &cli.data.join(store::sqlite::KEY_FILE),
        ]);
    }
    let storage = store::open_storage(&store::StorageConfig {
        data_dir: cli.data.clone(),
        database_url: cli.database_url.clone(),
        blobs_url: cli.blobs.clone(),
    })
    .map_err(|e| {
        if sqlite {
            damaged::explain_open_error(&cli.data, e)
        } else {
            e
        }
    })?;
    match cli.command {
        Command::Serve {
            addr,
            port_file,
            http,
            staging_quota_mib,
            max_open_uploads,
            staging_max_age_hours,
        } => {
            let limits = model::MediaLimits {
                staging_quota_bytes: staging_quota_mib.saturating_mul(1 << 20),
                max_open_uploads,
                staging_max_age: std::time::Duration::from_secs(
                    staging_max_age_hours.saturating_mul(3600),
                ),
            };
            serve(storage, &addr, port_file, &http, limits)
        }
        Command::Init { sample } => {
            if sample {
                let n = load_sample(storage.as_ref())?;
                println!("loaded {n} communities and the sample standards");
            }
            println!("database ready in {}", cli.data.display());
            Ok(())
        }
        Command::ImportCommunities { file } => {
            let n = storage.import_communities_csv(&std::fs::read(file)?)?;
            println!("imported {n} communities");
            Ok(())
        }
        Command::PublishStandard { file } => {
            let info = storage.publish_standard(&std::fs::read_to_string(file)?)?;
            println!(
                "published {} {} ({} items)",
                info.id, info.version, info.item_count
            );
            Ok(())
        }
        Command::AddUser { id, name, role } => {
            let role = Role::parse(&role).ok_or_else(|| {
                error::ServerError::BadRequest("role must be inspector, supervisor or admin".into())
            })?;
            storage.add_user(&id, name.as_deref().unwrap_or(&id), role)?;
            println!("user {id} ({})", role.as_str());
            Ok(())
        }
        Command::Assign {
            user,
            community,
            street,
            district,
        } => {
            let mut any = false;
            for (kind, value) in [
                (ScopeKind::Community, community),
                (ScopeKind::Street, street),
                (ScopeKind::District, district),
            ] {
                if let Some(v) = value {
                    storage.add_scope(&user, kind, &v)?;
                    any = true;
                }
            }
            if !any {
                return Err(error::ServerError::BadRequest(
                    "give --community, --street or --district".into(),
                ));
            }
            println!("assigned");
            Ok(())
        }
        Command::SetPassword { user } => {
            session::set_password_cli(storage.as_ref(), &user)?;
            println!("password set for {user}");
            Ok(())
        }
        Command::Enroll { user, hours } => {
            println!("{}", issue_enrollment_code(storage.as_ref(), &user, hours)?);
            Ok(())
        }
        Command::Report {
            kind,
            at,
            by,
            user,
            out,
            base_url,
        } => {
            let auth = cli_auth(storage.as_ref(), &user)?;
            let base_url = reports::BaseUrl::parse(&base_url)?;
            let kind = reports::ReportKind::parse(&kind)?;
            let (_, from, to) = domain::calendar::period_at(kind.period(), at.as_deref())?;
            let by = by.unwrap_or_else(|| kind.default_by().into());
            let report = reports::build(storage.as_ref(), &auth, kind, &by, from, to)?;
            std::fs::create_dir_all(&out)?;
            for format in [
                reports::Format::Xlsx,
                reports::Format::Csv,
                reports::Format::Html,
            ] {
                let bytes = reports::render(storage.as_ref(), &report, format, &base_url)?;
                let path = out.join(reports::file_name(kind, from, format));
                std::fs::write(&path, bytes)?;
                println!("{}", path.display());
            }
            Ok(())
        }
        Command::Plan {
            user,
            period,
            at,
            days,
            per_day,
            seed,
            inspectors,
        } => {
            let auth = cli_auth(storage.as_ref(), &user)?;
            let (at, from, to) = domain::calendar::period_at(&period, at.as_deref())?;
            let plan = planning::plan_visits(
                storage.as_ref(),
                &auth,
                &planning::PlanRequest {
                    from_ms: from,
                    to_ms: to,
                    start_ms: at,
                    days,
                    per_day,
                    seed,
                    inspectors: inspectors
                        .as_deref()
                        .map(domain::split_list)
                        .unwrap_or_default(),
                },
            )?;
            let missing = planning::uninspected(storage.as_ref(), &auth, from, to)?;
            let body = serde_json::json!({"uninspected": missing, "plan": plan});
            println!(
                "{}",
                serde_json::to_string_pretty(&body)
                    .map_err(|e| error::ServerError::Internal(e.to_string()))?
            );
            Ok(())
        }
        Command::RevokeDevice { device } => {
            if !storage.revoke_device(&device)? {
                return Err(error::ServerError::NotFound(format!(
                    "no device {device} is enrolled"
                )));
            }
            println!("revoked device {device}");
            Ok(())
        }
        Command::VerifyChain { .. } => unreachable!("handled above"),
        Command::Simulate {
            url,
            inspectors,
            inspections,
            weeks,
            devices,
        } => sim::simulate(
            storage.as_ref(),
            &url,
            inspectors,
            inspections,
            weeks,
            devices.unwrap_or_else(|| cli.data.join("devices")),
        ),
    }
}

/// Holds an exclusive lock on `<data>/serve.lock` while serving; refuses when another process
/// serves the same folder. The operating system drops the lock when the process ends, however it
/// ends, so a crash leaves nothing to clean up.
fn claim_sqlite_folder(data: &std::path::Path) -> error::ServerResult<std::fs::File> {
    files::create_private_dir(data)?;
    let file = files::private_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data.join("serve.lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(error::ServerError::Conflict(format!(
            "another fenlei-server is already serving {} — one SQLite data folder is served by \
             one process; run several instances on PostgreSQL (--database-url, docs/deploy.md)",
            data.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

fn verify_chain_command(
    data: &std::path::Path,
    database_url: Option<&str>,
    expect: Option<&str>,
    json: bool,
) -> error::ServerResult<()> {
    let expect = expect
        .map(|e| {
            let (i, h) = e.split_once(':').ok_or_else(|| {
                error::ServerError::BadRequest("--expect is INDEX:ENTRY_HASH".into())
            })?;
            let i = i.parse::<u64>().map_err(|_| {
                error::ServerError::BadRequest("--expect index is not a number".into())
            })?;
            Ok::<_, error::ServerError>((i, h.to_string()))
        })
        .transpose()?;
    let result = match database_url {
        Some(url) => store::pg::PgStorage::verify_chain(url, expect)?,
        None => {
            let db = data.join("fenlei-server.sqlite");
            if !db.exists() {
                return Err(error::ServerError::NotFound(format!(
                    "no database in {}",
                    data.display()
                )));
            }
            store::sqlite::verify_chain(&db, expect)?
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).unwrap_or_default()
        );
    } else {
        println!("chain: {} entries, head {}", result.entries, result.head);
        for p in &result.problems {
            println!("entry {}: {}", p.index, p.problem);
        }
    }
    if result.problems.is_empty() {
        if !json {
            println!("chain verified");
        }
        Ok(())
    } else {
        Err(error::ServerError::Internal(format!(
            "chain verification failed at entry {} ({} problems)",
            result.problems[0].index,
            result.problems.len()
        )))
    }
}

/// The binary's entry point (also built as the end-to-end tests' server binary).
pub fn cli_main() -> ExitCode {
    // Everything this process creates — the database and its WAL, keys, blobs, staged uploads,
    // the port file, reports — is the service user's alone: files 0600, folders 0700.
    files::restrict_umask();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fenlei-server: {e}");
            ExitCode::FAILURE
        }
    }
}
