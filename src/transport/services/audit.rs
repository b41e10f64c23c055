//! `ladder.v1.AuditService`: the tenant's audit log, for admins.

use tonic::{Request, Response, Status};

use crate::proto::v1 as pb;
use crate::proto::v1::audit_service_server::AuditService;
use crate::storage::audit::{self, AuditEvent, AuditFilter, AuditKey};
use crate::transport::AppState;
use crate::transport::convert::page::Page;
use crate::transport::convert::time;
use crate::transport::methods;

#[derive(Debug, Clone)]
pub struct AuditApi {
    state: AppState,
}

impl AuditApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

fn event_to_pb(event: AuditEvent) -> pb::AuditEvent {
    pb::AuditEvent {
        id: event.id.to_string(),
        actor: event.actor,
        method: event.method,
        resource: event.resource,
        resource_count: event.resource_count,
        last_resource: event.last_resource,
        request_id: event.request_id,
        outcome: event.outcome,
        time: Some(time::to_proto(event.at)),
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        self.state
            .in_transaction(
                methods::LIST_AUDIT_EVENTS,
                request,
                |req| {
                    let page = Page::<AuditKey>::parse(&req)?;
                    let filter = AuditFilter {
                        method: Some(req.method).filter(|m| !m.is_empty()),
                        actor: Some(req.actor).filter(|a| !a.is_empty()),
                        start_time: time::optional(req.start_time.as_ref(), "start_time")?,
                        end_time: time::optional(req.end_time.as_ref(), "end_time")?,
                    };
                    Ok((filter, page))
                },
                async |caller, tx, (filter, page)| {
                    let (events, next_page_token) = page
                        .fetch(
                            &self.state,
                            &caller.tenant,
                            tx,
                            async |tx, before, limit| {
                                audit::list(tx, &caller.tenant, &filter, before, limit).await
                            },
                            |e| (e.at, e.id),
                        )
                        .await?;
                    Ok(pb::ListAuditEventsResponse {
                        audit_events: events.into_iter().map(event_to_pb).collect(),
                        next_page_token,
                    })
                },
            )
            .await
    }
}
