//! `ladder framework export|import|init`: a tenant's career framework as
//! code, in Ladder's YAML or as a CASE 1.1 package. By default the commands
//! call a running server (`FrameworkService`, like `ladder evidence import`);
//! with `--direct` they work on the database themselves, for bootstrapping a
//! tenant before any server runs.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use sqlx::PgConnection;
use tonic::Code;
use tonic_types::StatusExt;

use crate::app::cli::DatabaseArgs;
use crate::app::client::{ServerArgs, call_failed};
use crate::app::error::AppError;
use crate::app::server::Database;
use crate::domain::framework::Document;
use crate::domain::standards::case::{CaseNote, NoteKind};
use crate::domain::standards::{self, FrameworkFormat};
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::storage::framework_file::{self, ImportReport, Prune};
use crate::storage::{StorageError, TenantId, case_items};
use crate::transport::auth::DEV_TENANT;
use crate::transport::convert::standards::{format_to_pb, notes_from_pb, report_from_pb};

#[derive(Debug, Args)]
pub struct FrameworkArgs {
    #[command(subcommand)]
    command: FrameworkCommand,
}

#[derive(Debug, Subcommand)]
enum FrameworkCommand {
    /// Write the tenant's framework: every competency, and every role with
    /// its published rubric.
    Export {
        #[command(flatten)]
        target: Target,
        /// File to write [default: standard output].
        #[arg(long)]
        output: Option<PathBuf>,
        /// yaml (Ladder's file) or case (a CASE 1.1 package) [default: case
        /// for an --output ending in .json, else yaml].
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
    },
    /// Validate a framework file, then apply it in one transaction: new items
    /// are created, differing ones changed (a changed rubric becomes a new
    /// published version), the rest left alone and listed.
    Import {
        /// The file: Ladder's YAML (.yaml, .yml) or a CASE 1.1 package (.json).
        file: PathBuf,
        #[command(flatten)]
        target: Target,
        /// yaml or case [default: from the file's extension].
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// Validate and print what would change, writing nothing.
        #[arg(long)]
        dry_run: bool,
        /// Make the file the whole framework: remove what the tenant has and
        /// the file does not (retire it where published rubrics, evidence or
        /// subjects still cite it). `mode: complete` in the file does the same.
        #[arg(long)]
        prune: bool,
        /// With --prune (or `mode: complete`): subjects whose current role the file retires get
        /// NEW instead, in the same transaction (OLD=NEW, repeatable).
        #[arg(long, value_name = "OLD=NEW", value_parser = reassignment)]
        reassign: Vec<(String, String)>,
        /// With --prune (or `mode: complete`): retire roles that subjects hold as their current
        /// role without reassigning them (they keep the retired role).
        #[arg(long)]
        allow_stranded: bool,
    },
    /// Load the built-in framework into the tenant (as an import would).
    Init {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Yaml,
    Case,
}

impl From<FormatArg> for FrameworkFormat {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Yaml => FrameworkFormat::Yaml,
            FormatArg::Case => FrameworkFormat::Case,
        }
    }
}

/// `OLD=NEW` of `--reassign`.
fn reassignment(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((from, to)) if !from.is_empty() && !to.is_empty() => {
            Ok((from.to_string(), to.to_string()))
        }
        _ => Err(format!(
            "{arg:?}: expected OLD=NEW, a role the file retires and a role of the file"
        )),
    }
}

/// Which server, or with `--direct` which database and tenant, a framework
/// command works on.
#[derive(Debug, Args)]
struct Target {
    /// Work on the database directly instead of calling a server: for
    /// bootstrapping a tenant before a server runs (the embedded cluster
    /// under --data-dir must not be in use by one).
    #[arg(long)]
    direct: bool,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    database: DatabaseArgs,
    /// With --direct: the tenant whose framework this is (over the API, the
    /// token's tenant).
    #[arg(long, env = "LADDER_TENANT", default_value = DEV_TENANT)]
    tenant: String,
}

impl Target {
    /// Runs `work` in one transaction of the tenant, closing the database
    /// (and stopping an embedded cluster) whatever the outcome.
    async fn in_database<T>(
        &self,
        work: impl AsyncFnOnce(&mut PgConnection, &TenantId) -> Result<T, StorageError>,
    ) -> Result<T, AppError> {
        let database = Database::open_as_owner(&self.database.config()).await?;
        let tenant = TenantId(self.tenant.clone());
        let result = async {
            let mut tx = database.db.begin(&tenant).await?;
            let value = work(&mut tx, &tenant).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(value)
        }
        .await;
        database.close().await?;
        Ok(result?)
    }

    /// Imports `bytes`, read from `file` (which problems are said to be in).
    async fn import(
        &self,
        file: &str,
        format: FrameworkFormat,
        bytes: Vec<u8>,
        dry_run: bool,
        prune: &Prune,
    ) -> Result<(), AppError> {
        let (report, notes) = if self.direct {
            // The whole file is checked before the database is even opened.
            let mut read =
                standards::read_framework(format, &bytes).map_err(|found| in_file(file, found))?;
            let report = self
                .in_database(async |conn, tenant| {
                    case_items::import(conn, tenant, &mut read, dry_run, prune).await
                })
                .await?;
            (report, read.notes)
        } else {
            let mut clients = self.server.connect().await.map_err(not_reached)?;
            let request = pb::ImportFrameworkRequest {
                format: format_to_pb(format) as i32,
                document: bytes,
                validate_only: dry_run,
                prune: prune.enabled,
                reassign: prune
                    .reassign
                    .iter()
                    .map(|(from, to)| pb::RoleReassignment {
                        from_role_id: from.clone(),
                        to_role_id: to.clone(),
                    })
                    .collect(),
                allow_stranded: prune.allow_stranded,
            };
            let response = clients
                .framework
                .import_framework(request)
                .await
                .map_err(|status| import_failed(file, status))?
                .into_inner();
            (report_from_pb(&response), notes_from_pb(&response))
        };
        print_report(&report, &notes, dry_run);
        Ok(())
    }
}

/// The server could not be reached: say how to work without one.
fn not_reached(err: AppError) -> AppError {
    AppError::Config(format!(
        "{err}\n(is `ladder serve` running there? To bootstrap a tenant without a server, \
         pass --direct with the database options)"
    ))
}

/// A refused document reads as the direct import's problems, at their path
/// in the file; other failures as any call's.
fn import_failed(file: &str, status: tonic::Status) -> AppError {
    let Some(bad) = status
        .get_details_bad_request()
        .filter(|_| status.code() == Code::InvalidArgument)
    else {
        return call_failed(status);
    };
    let mut found = Violations::new();
    for v in bad.field_violations {
        let field = match v.field.strip_prefix("document") {
            Some(path) => path.trim_start_matches('.').to_string(),
            None => v.field,
        };
        found.add(field, v.description);
    }
    in_file(file, found)
}

/// The problems of a file, each naming it (`ft.yaml: roles[4].track: …`).
fn in_file(file: &str, found: Violations) -> AppError {
    let mut named = Violations::new();
    for v in found.0 {
        let field = if v.field.is_empty() {
            file.to_string()
        } else {
            format!("{file}: {}", v.field)
        };
        named.add(field, v.description);
    }
    AppError::InvalidFramework(named)
}

fn print_report(report: &ImportReport, notes: &[CaseNote], dry_run: bool) {
    if dry_run {
        println!("dry run: nothing was written; an import would do this:");
    }
    for note in notes {
        let kind = match note.kind {
            NoteKind::Skipped => "skipped",
            NoteKind::Adjusted => "adjusted",
        };
        println!("{kind:<9} {}: {}", note.identifier, note.reason);
    }
    println!("{report}");
    if !notes.is_empty() {
        println!(
            "{} object(s) of the CASE package were skipped or adjusted (listed above)",
            notes.len()
        );
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, AppError> {
    std::fs::read(path).map_err(|source| AppError::Io {
        context: format!("reading {}", path.display()),
        source,
    })
}

pub async fn run(args: FrameworkArgs) -> Result<(), AppError> {
    match args.command {
        FrameworkCommand::Export {
            target,
            output,
            format,
        } => {
            let format = format.map(FrameworkFormat::from).unwrap_or_else(|| {
                output
                    .as_deref()
                    .and_then(FrameworkFormat::of_path)
                    .unwrap_or(FrameworkFormat::Yaml)
            });
            let text = if target.direct {
                let (exported, kept) = target
                    .in_database(async |conn, tenant| {
                        let exported = framework_file::export(conn, tenant).await?;
                        Ok((exported, case_items::known(conn, tenant).await?))
                    })
                    .await?;
                standards::write_framework(format, &exported.document, exported.last_change, &kept)
                    .into_bytes()
            } else {
                let mut clients = target.server.connect().await.map_err(not_reached)?;
                let request = pb::ExportFrameworkRequest {
                    format: format_to_pb(format) as i32,
                    last_change_time: None,
                };
                clients
                    .framework
                    .export_framework(request)
                    .await
                    .map_err(call_failed)?
                    .into_inner()
                    .document
            };
            match output {
                Some(path) => std::fs::write(&path, text).map_err(|source| AppError::Io {
                    context: format!("writing {}", path.display()),
                    source,
                }),
                None => {
                    use std::io::Write;
                    std::io::stdout()
                        .write_all(&text)
                        .map_err(|source| AppError::Io {
                            context: "writing to standard output".into(),
                            source,
                        })
                }
            }
        }
        FrameworkCommand::Import {
            file,
            target,
            format,
            dry_run,
            prune,
            reassign,
            allow_stranded,
        } => {
            let format = format
                .map(FrameworkFormat::from)
                .or_else(|| FrameworkFormat::of_path(&file))
                .ok_or_else(|| {
                    AppError::Config(format!(
                        "{}: cannot tell the format from the file name; pass --format yaml \
                         (Ladder's file) or --format case (a CASE 1.1 package)",
                        file.display()
                    ))
                })?;
            let prune = Prune {
                enabled: prune,
                reassign,
                allow_stranded,
            };
            target
                .import(
                    &file.display().to_string(),
                    format,
                    read_file(&file)?,
                    dry_run,
                    &prune,
                )
                .await
        }
        FrameworkCommand::Init { target } => {
            let builtin = Document::builtin()
                .to_yaml()
                .expect("the built-in framework serializes");
            target
                .import(
                    "framework/builtin.yaml",
                    FrameworkFormat::Yaml,
                    builtin.into_bytes(),
                    false,
                    &Prune::default(),
                )
                .await
        }
    }
}
