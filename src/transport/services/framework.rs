//! `ladder.v1.FrameworkService`: a tenant's whole framework in and out, as
//! Ladder's YAML file or a CASE 1.1 package.

use tonic::{Request, Response, Status};

use crate::domain::framework::{Document, ImportMode, check_id};
use crate::domain::standards::{self, FrameworkFormat};
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::proto::v1::framework_service_server::FrameworkService;
use crate::storage::audit::Resources;
use crate::storage::case_items;
use crate::storage::framework_file::{self, Prune};
use crate::transport::convert::standards::{format_from_pb, format_to_pb, import_to_pb};
use crate::transport::convert::time;
use crate::transport::error::ApiError;
use crate::transport::methods;
use crate::transport::{AppState, MAX_DOCUMENT_BYTES};

#[derive(Debug, Clone)]
pub struct FrameworkApi {
    state: AppState,
}

impl FrameworkApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// What `ImportFramework` asks for, read and validated.
struct ImportRequest {
    read: standards::ReadFramework,
    validate_only: bool,
    prune: Prune,
}

/// Reads and validates the whole document before anything is touched;
/// every problem is named at `document.<its path>`.
fn import_request(req: pb::ImportFrameworkRequest) -> Result<ImportRequest, ApiError> {
    let format = format_from_pb(req.format, "format")?;
    if req.document.is_empty() {
        return Err(ApiError::field("document", "is required"));
    }
    if req.document.len() > MAX_DOCUMENT_BYTES {
        return Err(ApiError::field(
            "document",
            format!("must be at most {MAX_DOCUMENT_BYTES} bytes"),
        ));
    }
    let read = standards::read_framework(format, &req.document).map_err(|found| {
        let mut located = Violations::new();
        located.extend_prefixed("document", found);
        located
    })?;
    let prunes = req.prune || read.document.mode == ImportMode::Complete;
    let mut v = Violations::new();
    for (field, set) in [
        ("reassign", !req.reassign.is_empty()),
        ("allow_stranded", req.allow_stranded),
    ] {
        if set && !prunes {
            v.add(
                field,
                "applies only to a prune: set prune (or `mode: complete` in the document)",
            );
        }
    }
    v.into_result(())?;
    let reassign = reassignments(&req.reassign, &read.document)?;
    Ok(ImportRequest {
        read,
        validate_only: req.validate_only,
        prune: Prune {
            enabled: req.prune,
            reassign,
            allow_stranded: req.allow_stranded,
        },
    })
}

/// `reassign`, each from a role the document leaves out to one it has.
fn reassignments(
    items: &[pb::RoleReassignment],
    doc: &Document,
) -> Result<Vec<(String, String)>, Violations> {
    let (_, in_file) = doc.track_and_role_ids();
    let mut v = Violations::new();
    let mut pairs = Vec::new();
    for (i, r) in items.iter().enumerate() {
        let from = format!("reassign[{i}].from_role_id");
        let to = format!("reassign[{i}].to_role_id");
        let before = v.0.len();
        check_id(&mut v, &from, &r.from_role_id);
        check_id(&mut v, &to, &r.to_role_id);
        if v.0.len() > before {
            continue;
        }
        let (from_id, to_id) = (r.from_role_id.clone(), r.to_role_id.clone());
        if in_file.contains(&from_id.as_str()) {
            v.add(
                from,
                format!("role {from_id:?} is in the document: a prune keeps it"),
            );
        } else if pairs.iter().any(|(f, _)| *f == from_id) {
            v.add(from, format!("role {from_id:?} is reassigned twice"));
        }
        if !in_file.contains(&to_id.as_str()) {
            v.add(to, format!("role {to_id:?} is not in the document"));
        }
        pairs.push((from_id, to_id));
    }
    v.into_result(pairs)
}

#[tonic::async_trait]
impl FrameworkService for FrameworkApi {
    async fn import_framework(
        &self,
        request: Request<pb::ImportFrameworkRequest>,
    ) -> Result<Response<pb::ImportFrameworkResponse>, Status> {
        self.state
            .in_transaction(
                methods::IMPORT_FRAMEWORK,
                request,
                import_request,
                async |caller, tx, mut req| {
                    let report = case_items::import(
                        tx,
                        &caller.tenant,
                        &mut req.read,
                        req.validate_only,
                        &req.prune,
                    )
                    .await?;
                    tx.audit(Resources::one("framework"));
                    Ok(import_to_pb(report, req.read.notes))
                },
            )
            .await
    }

    async fn export_framework(
        &self,
        request: Request<pb::ExportFrameworkRequest>,
    ) -> Result<Response<pb::ExportFrameworkResponse>, Status> {
        self.state
            .in_transaction(
                methods::EXPORT_FRAMEWORK,
                request,
                |req| {
                    let format = match req.format {
                        0 => FrameworkFormat::Yaml,
                        other => format_from_pb(other, "format")?,
                    };
                    let last_change =
                        time::optional(req.last_change_time.as_ref(), "last_change_time")?;
                    Ok((format, last_change))
                },
                async |caller, tx, (format, last_change)| {
                    let exported = framework_file::export(tx, &caller.tenant).await?;
                    let kept = case_items::known(tx, &caller.tenant).await?;
                    let last_change = last_change.unwrap_or(exported.last_change);
                    let document =
                        standards::write_framework(format, &exported.document, last_change, &kept);
                    Ok(pb::ExportFrameworkResponse {
                        format: format_to_pb(format) as i32,
                        document: document.into_bytes(),
                    })
                },
            )
            .await
    }
}
