//! fenlei-server: the sync endpoint, device enrollment, reference data and the supervisor API
//! (docs/sync-protocol.md). Storage sits behind [`storage::Storage`]; the embedded default is
//! [`storage::SqliteStorage`] (one SQLite file in the data folder).
//!
//! The binary's commands (`fenlei-server --help`): `serve`, and the admin commands `init`,
//! `import-communities`, `publish-standard`, `add-user`, `assign`, `enroll`; `simulate` runs
//! simulated devices against a running server (the main job's demo).

pub mod api;
pub mod chain;
pub mod error;
pub mod sim;
pub mod storage;
pub mod sync;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use storage::{Role, ScopeKind, SqliteStorage, Storage};

#[derive(Parser)]
#[command(
    name = "fenlei-server",
    about = "Fenlei sync server and its admin commands"
)]
struct Cli {
    /// The data folder (database; blobs later).
    #[arg(long, global = true, default_value = "fenlei-data")]
    data: PathBuf,
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
    /// Issue a one-time enrollment code for a device of USER (valid for --hours).
    Enroll {
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
    /// Re-check the hash chain of signed submissions (docs/tamper-evidence.md). Exits non-zero
    /// and names the first index of every altered, removed or reordered entry.
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
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 3)]
        inspectors: u32,
        #[arg(long, default_value_t = 6)]
        inspections: u32,
        /// Where the simulated devices keep their stores.
        #[arg(long)]
        devices: Option<PathBuf>,
    },
}

/// Creates a one-time enrollment code for `user` and returns it (only its hash is stored).
pub fn issue_enrollment_code(
    storage: &dyn Storage,
    user: &str,
    hours: i64,
) -> error::ServerResult<String> {
    let code = api::new_secret();
    storage.add_enrollment_code(
        user,
        &api::hash_secret(&code),
        storage::now() + hours.clamp(1, 24 * 30) * 3_600_000,
    )?;
    Ok(code)
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
) -> error::ServerResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        println!("fenlei-server listening on http://{local}");
        if let Some(f) = port_file {
            // Written whole to a temp file and renamed, so a reader never sees half a port.
            let tmp = f.with_extension("tmp");
            std::fs::write(&tmp, local.port().to_string())?;
            std::fs::rename(&tmp, &f)?;
        }
        axum::serve(listener, api::router(storage))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}

fn run(cli: Cli) -> error::ServerResult<()> {
    if let Command::VerifyChain { expect, json } = &cli.command {
        // Read-only on the file as it is: no migration, no key creation.
        return verify_chain_command(&cli.data, expect.as_deref(), *json);
    }
    let storage = Arc::new(SqliteStorage::open(&cli.data)?);
    match cli.command {
        Command::Serve { addr, port_file } => serve(storage, &addr, port_file),
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
        Command::Enroll { user, hours } => {
            println!("{}", issue_enrollment_code(storage.as_ref(), &user, hours)?);
            Ok(())
        }
        Command::VerifyChain { .. } => unreachable!("handled above"),
        Command::Simulate {
            url,
            inspectors,
            inspections,
            devices,
        } => sim::simulate(
            storage.as_ref(),
            &url,
            inspectors,
            inspections,
            devices.unwrap_or_else(|| cli.data.join("devices")),
        ),
    }
}

fn verify_chain_command(
    data: &std::path::Path,
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
    let db = data.join("fenlei-server.sqlite");
    if !db.exists() {
        return Err(error::ServerError::NotFound(format!(
            "no database in {}",
            data.display()
        )));
    }
    let result = chain::verify_chain(&db, expect)?;
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
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fenlei-server: {e}");
            ExitCode::FAILURE
        }
    }
}
