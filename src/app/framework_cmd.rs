//! `ladder framework export|import|init`: a tenant's career framework as
//! code, read and written directly in the database.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::app::cli::DatabaseArgs;
use crate::app::error::AppError;
use crate::app::server::Database;
use crate::domain::framework::Document;
use crate::storage::framework_file::{self, ImportReport};
use crate::storage::{Db, StorageError, TenantId};
use crate::transport::auth::DEV_TENANT;

#[derive(Debug, Args)]
pub struct FrameworkArgs {
    #[command(subcommand)]
    command: FrameworkCommand,
}

#[derive(Debug, Subcommand)]
enum FrameworkCommand {
    /// Write the tenant's framework as YAML: every competency, and every role
    /// with its published rubric.
    Export {
        #[command(flatten)]
        target: Target,
        /// File to write [default: standard output].
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Validate a framework file, then apply it in one transaction: new items
    /// are created, differing ones changed (a changed rubric becomes a new
    /// published version), the rest left alone. Nothing is deleted.
    Import {
        /// The YAML file (format ladder.framework/v1).
        file: PathBuf,
        #[command(flatten)]
        target: Target,
        /// Validate and print what would change, writing nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Load the built-in framework into the tenant (as an import would).
    Init {
        #[command(flatten)]
        target: Target,
    },
}

/// Which database and tenant a framework command works on.
#[derive(Debug, Args)]
struct Target {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Tenant whose framework this is.
    #[arg(long, env = "LADDER_TENANT", default_value = DEV_TENANT)]
    tenant: String,
}

impl Target {
    /// Runs `work` against the database, closing it (and stopping an
    /// embedded cluster) whatever the outcome.
    async fn with_db<T>(
        &self,
        work: impl AsyncFnOnce(&Db, &TenantId) -> Result<T, StorageError>,
    ) -> Result<T, AppError> {
        let database = Database::open_as_owner(&self.database.config()).await?;
        let result = work(&database.db, &TenantId(self.tenant.clone())).await;
        database.close().await?;
        Ok(result?)
    }
}

fn print_report(report: &ImportReport, dry_run: bool) {
    if dry_run {
        println!("dry run: nothing was written; an import would do this:");
    }
    println!("{report}");
}

pub async fn run(args: FrameworkArgs) -> Result<(), AppError> {
    match args.command {
        FrameworkCommand::Export { target, output } => {
            let doc = target.with_db(framework_file::export).await?;
            let text = doc
                .to_yaml()
                .map_err(|e| AppError::Config(format!("writing YAML: {e}")))?;
            match output {
                Some(path) => std::fs::write(&path, text).map_err(|source| AppError::Io {
                    context: format!("writing {}", path.display()),
                    source,
                }),
                None => {
                    print!("{text}");
                    Ok(())
                }
            }
        }
        FrameworkCommand::Import {
            file,
            target,
            dry_run,
        } => {
            let text = std::fs::read_to_string(&file).map_err(|source| AppError::Io {
                context: format!("reading {}", file.display()),
                source,
            })?;
            // The whole file is checked before the database is even opened.
            let doc = Document::from_yaml(&text).map_err(AppError::InvalidFramework)?;
            let report = target
                .with_db(async |db, tenant| framework_file::import(db, tenant, &doc, dry_run).await)
                .await?;
            print_report(&report, dry_run);
            Ok(())
        }
        FrameworkCommand::Init { target } => {
            let report = target
                .with_db(async |db, tenant| {
                    framework_file::import(db, tenant, Document::builtin(), false).await
                })
                .await?;
            print_report(&report, false);
            Ok(())
        }
    }
}
