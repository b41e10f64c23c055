//! `ladder.v1.SubjectRightsService`: a subject's data exported as one
//! document, or erased, by an admin.

use chrono::Utc;
use tonic::{Request, Response, Status};

use crate::proto::v1 as pb;
use crate::proto::v1::subject_rights_service_server::SubjectRightsService;
use crate::storage::audit::{self, Resources};
use crate::storage::subject_data::{self, SubjectData};
use crate::transport::AppState;
use crate::transport::convert::assessment::{self as convert, subject_id};
use crate::transport::convert::time;
use crate::transport::methods;

#[derive(Debug, Clone)]
pub struct SubjectRightsApi {
    state: AppState,
}

impl SubjectRightsApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

fn subject_data_to_pb(data: SubjectData) -> pb::SubjectData {
    pb::SubjectData {
        subject_id: data.subject_id,
        current_role_id: data.current_role_id.unwrap_or_default(),
        org_unit: data.org_unit.unwrap_or_default(),
        manager_id: data.manager_id.unwrap_or_default(),
        evidence: data
            .evidence
            .iter()
            .map(convert::evidence_to_proto)
            .collect(),
        assessments: data
            .assessments
            .iter()
            .map(convert::assessment_to_proto)
            .collect(),
        export_time: Some(time::to_proto(Utc::now())),
        decisions: data
            .decisions
            .iter()
            .map(crate::transport::convert::oversight::decision_to_proto)
            .collect(),
    }
}

#[tonic::async_trait]
impl SubjectRightsService for SubjectRightsApi {
    async fn export_subject_data(
        &self,
        request: Request<pb::ExportSubjectDataRequest>,
    ) -> Result<Response<pb::ExportSubjectDataResponse>, Status> {
        self.state
            .in_transaction(
                methods::EXPORT_SUBJECT_DATA,
                request,
                |req| Ok(subject_id(&req.subject_id, "subject_id")?),
                async |caller, tx, id| {
                    let data = subject_data::export(tx, &caller.tenant, &id).await?;
                    Ok(pb::ExportSubjectDataResponse {
                        subject_data: Some(subject_data_to_pb(data)),
                    })
                },
            )
            .await
    }

    async fn erase_subject(
        &self,
        request: Request<pb::EraseSubjectRequest>,
    ) -> Result<Response<pb::EraseSubjectResponse>, Status> {
        self.state
            .in_transaction(
                methods::ERASE_SUBJECT,
                request,
                |req| Ok(subject_id(&req.subject_id, "subject_id")?),
                async |caller, tx, id| {
                    let erased = subject_data::erase(tx, &caller.tenant, &id).await?;
                    let mut resources = Resources::one(audit::subject_name(tx, &id).await?);
                    resources.count = (erased.evidence + erased.assessments + erased.decisions)
                        as i32
                        + i32::from(erased.subject);
                    tx.audit(resources);
                    Ok(pb::EraseSubjectResponse {
                        evidence_deleted: erased.evidence as i32,
                        assessments_deleted: erased.assessments as i32,
                        subject_deleted: erased.subject,
                        decisions_deleted: erased.decisions as i32,
                    })
                },
            )
            .await
    }
}
