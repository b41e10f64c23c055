//! `ladder.v1.XapiService`: xAPI statements as evidence. Each statement maps
//! on its own (`domain::standards::xapi`); what maps is recorded or voids
//! earlier evidence in the call's one transaction, and every statement gets
//! its own answer.

use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::standards::case::DEFAULT_BASE_URI;
use crate::domain::standards::xapi::{self, CompetencyIndex, XapiAction, XapiBatch, XapiOptions};
use crate::proto::v1 as pb;
use crate::proto::v1::StatementOutcome as Outcome;
use crate::proto::v1::xapi_service_server::XapiService;
use crate::storage::audit::Resources;
use crate::storage::{self, StorageError, TenantId, TenantTx, case_items, competencies};
use crate::transport::error::ApiError;
use crate::transport::methods;
use crate::transport::{AppState, MAX_DOCUMENT_BYTES};

#[derive(Debug, Clone)]
pub struct XapiApi {
    state: AppState,
}

impl XapiApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// What `ImportStatements` asks for.
struct StatementsRequest {
    statements: Vec<u8>,
    options: XapiOptions,
}

fn statements_request(req: pb::ImportStatementsRequest) -> Result<StatementsRequest, ApiError> {
    if req.statements.is_empty() {
        return Err(ApiError::field("statements", "is required"));
    }
    if req.statements.len() > MAX_DOCUMENT_BYTES {
        return Err(ApiError::field(
            "statements",
            format!("must be at most {MAX_DOCUMENT_BYTES} bytes; send them in batches"),
        ));
    }
    let home_page = req.account_home_page.trim();
    Ok(StatementsRequest {
        statements: req.statements,
        options: XapiOptions {
            hris_home_page: (!home_page.is_empty()).then(|| home_page.to_string()),
        },
    })
}

fn result(
    index: usize,
    statement_id: String,
    outcome: Outcome,
    evidence_id: Option<Uuid>,
    reason: String,
) -> pb::StatementResult {
    pb::StatementResult {
        index: index as i32,
        statement_id,
        outcome: outcome as i32,
        evidence_id: evidence_id.map(|id| id.to_string()).unwrap_or_default(),
        reason,
    }
}

/// Why a statement whose id is stored with other content is refused.
const CHANGED_STATEMENT: &str = "its id is stored with different content: a statement id names \
     one statement; to change what it said, void it and send a new statement";

/// Records and voids what maps, answering every statement (in no order).
async fn apply(
    tx: &mut TenantTx,
    tenant: &TenantId,
    batch: XapiBatch,
) -> Result<Vec<pb::StatementResult>, StorageError> {
    let mut results: Vec<pb::StatementResult> = batch
        .skipped
        .into_iter()
        .map(|s| {
            let id = s.statement_id.unwrap_or_default();
            result(s.index, id, Outcome::Rejected, None, s.reason)
        })
        .collect();
    let mut places = Vec::new();
    let mut records = Vec::new();
    let mut voids = Vec::new();
    for m in batch.mapped {
        match m.action {
            XapiAction::Record(evidence) => {
                places.push((m.index, m.statement_id));
                records.push(evidence);
            }
            XapiAction::Void {
                voided_statement_id,
            } => voids.push((m.index, m.statement_id, voided_statement_id)),
        }
    }
    let stored = storage::evidence::insert_each(tx, tenant, records).await?;
    for ((index, id), stored) in places.into_iter().zip(stored) {
        results.push(match stored {
            Some((e, true)) => result(index, id, Outcome::Recorded, Some(e.id), String::new()),
            Some((e, false)) => result(index, id, Outcome::Duplicate, Some(e.id), String::new()),
            None => result(index, id, Outcome::Rejected, None, CHANGED_STATEMENT.into()),
        });
    }
    for (index, id, voided) in voids {
        let deleted =
            storage::evidence::delete_by_key(tx, tenant, xapi::SOURCE_SYSTEM, &voided).await?;
        results.push(match deleted {
            Some(evidence_id) => {
                result(index, id, Outcome::Voided, Some(evidence_id), String::new())
            }
            None => {
                let reason = format!(
                    "no evidence of statement {voided} is stored (never sent, or voided before)"
                );
                result(index, id, Outcome::NothingToVoid, None, reason)
            }
        });
    }
    Ok(results)
}

#[tonic::async_trait]
impl XapiService for XapiApi {
    async fn import_statements(
        &self,
        request: Request<pb::ImportStatementsRequest>,
    ) -> Result<Response<pb::ImportStatementsResponse>, Status> {
        let max_statements = self.state.limits.max_batch;
        self.state
            .in_transaction(
                methods::IMPORT_STATEMENTS,
                request,
                statements_request,
                async |caller, tx, req| {
                    let tenant = &caller.tenant;
                    let ids: Vec<String> = competencies::in_framework_order(tx, tenant)
                        .await?
                        .into_iter()
                        .map(|c| c.value.id)
                        .collect();
                    let mut index = CompetencyIndex::new(DEFAULT_BASE_URI, ids.iter().map(String::as_str));
                    for item in case_items::known(tx, tenant).await? {
                        index.case_item(&item);
                    }
                    let batch = xapi::map_statements(&req.statements, &index, &req.options)
                        .map_err(|e| ApiError::field("statements", e.0))?;
                    let count = batch.mapped.len() + batch.skipped.len();
                    if count > max_statements {
                        return Err(ApiError::field(
                            "statements",
                            format!(
                                "holds {count} statements, at most {max_statements} are taken in one call; send them in batches"
                            ),
                        ));
                    }

                    let mut results = apply(tx, tenant, batch).await?;
                    results.sort_by_key(|r| r.index);
                    let statements: Vec<String> = results
                        .iter()
                        .map(|r| format!("xapi_statements/{}", r.statement_id))
                        .collect();
                    tx.audit(Resources::batch(&statements));
                    let count = |outcome: Outcome| {
                        results.iter().filter(|r| r.outcome == outcome as i32).count() as i32
                    };
                    Ok(pb::ImportStatementsResponse {
                        recorded_count: count(Outcome::Recorded),
                        duplicate_count: count(Outcome::Duplicate),
                        voided_count: count(Outcome::Voided),
                        rejected_count: count(Outcome::Rejected),
                        results,
                    })
                },
            )
            .await
    }
}
