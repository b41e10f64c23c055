//! The subject methods of `ladder.v1.AssessmentService`: get, update one or
//! a batch (AIP-233), list. `AssessmentApi` hands each call here.

use std::collections::HashMap;

use tonic::{Request, Response, Status};

use crate::domain::assessment::Subject;
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::storage::audit::{self, Resources};
use crate::storage::stored::expected_revision;
use crate::storage::subjects::{self, FROM_EVIDENCE_ONLY};
use crate::storage::{StorageError, TenantTx, roles};
use crate::transport::AppState;
use crate::transport::convert::assessment::subject_id;
use crate::transport::convert::page::Page;
use crate::transport::convert::subject::{self as convert, SubjectUpdate};
use crate::transport::error::ApiError;
use crate::transport::methods;
use crate::transport::pipeline::Call;

pub async fn get(
    state: &AppState,
    request: Request<pb::GetSubjectRequest>,
) -> Result<Response<pb::GetSubjectResponse>, Status> {
    state
        .in_transaction(
            methods::GET_SUBJECT,
            request,
            |req| Ok(subject_id(&req.subject_id, "subject_id")?),
            async |caller, tx, id| {
                let (subject, revision) = subjects::get(tx, &caller.tenant, &id).await?;
                Ok(pb::GetSubjectResponse {
                    subject: Some(convert::subject_to_proto(&subject, revision)),
                })
            },
        )
        .await
}

pub async fn update(
    state: &AppState,
    request: Request<pb::UpdateSubjectRequest>,
) -> Result<Response<pb::UpdateSubjectResponse>, Status> {
    state
        .in_transaction(
            methods::UPDATE_SUBJECT,
            request,
            |req| Ok(vec![convert::subject_update(req)?]),
            async |caller, tx, updates| {
                let stored = apply(caller, tx, &updates, false).await?;
                Ok(pb::UpdateSubjectResponse {
                    subject: stored
                        .first()
                        .map(|(subject, revision)| convert::subject_to_proto(subject, *revision)),
                })
            },
        )
        .await
}

pub async fn batch_update(
    state: &AppState,
    request: Request<pb::BatchUpdateSubjectsRequest>,
) -> Result<Response<pb::BatchUpdateSubjectsResponse>, Status> {
    let max_batch = state.limits.max_batch;
    state
        .in_transaction(
            methods::BATCH_UPDATE_SUBJECTS,
            request,
            |req| Ok(convert::batch_update(req.requests, max_batch)?),
            async |caller, tx, updates| {
                let stored = apply(caller, tx, &updates, true).await?;
                Ok(pb::BatchUpdateSubjectsResponse {
                    subjects: stored
                        .iter()
                        .map(|(subject, revision)| convert::subject_to_proto(subject, *revision))
                        .collect(),
                })
            },
        )
        .await
}

/// The name of a request's field in the call: `subject.org_unit` alone,
/// `requests[3].subject.org_unit` in a batch.
fn field_of(batch: bool, i: usize, field: &str) -> String {
    if !batch {
        field.to_string()
    } else {
        format!("requests[{i}].{field}")
    }
}

/// Applies `updates` (a subject at most once) in the caller's transaction
/// and returns each subject as stored, in order. Everything is checked
/// before the call commits: a role the tenant lacks, a missing subject
/// without allow_missing, a stale etag and a cycle of managers each fail it,
/// and then the transaction is rolled back. An update that changes nothing
/// writes nothing, so a re-sent batch changes nothing.
async fn apply(
    caller: &Call,
    tx: &mut TenantTx,
    updates: &[SubjectUpdate],
    batch: bool,
) -> Result<Vec<(Subject, i64)>, ApiError> {
    let tenant = &caller.tenant;
    if updates.iter().any(|u| u.sets("manager_id")) {
        subjects::lock_managers(tx, tenant).await?;
    }
    unknown_roles(tx, caller, updates, batch).await?;

    let ids: Vec<String> = updates.iter().map(|u| u.sent.id.clone()).collect();
    let mut found: HashMap<String, (Subject, i64)> = subjects::get_many(tx, tenant, &ids)
        .await?
        .into_iter()
        .map(|(subject, revision)| (subject.id.clone(), (subject, revision)))
        .collect();
    let mut stored = Vec::with_capacity(updates.len());
    // Index into `stored` of each write, and the write.
    let mut writes: Vec<(usize, (Subject, i64))> = Vec::new();
    for (i, u) in updates.iter().enumerate() {
        let id = &u.sent.id;
        let (current, revision, exists) = match found.remove(id) {
            Some((subject, revision)) => (subject, revision, true),
            None if u.allow_missing => (Subject::bare(id.clone()), FROM_EVIDENCE_ONLY, false),
            None => return Err(StorageError::not_found("subject", id).into()),
        };
        if exists {
            expected_revision("subject", id, revision, u.update.expected)?;
        }
        let merged = u.merge(current.clone());
        if !exists || merged != current {
            writes.push((i, (merged.clone(), revision)));
        }
        stored.push((merged, revision));
    }

    let to_write: Vec<(Subject, i64)> = writes.iter().map(|(_, w)| w.clone()).collect();
    let revisions = subjects::put_many(tx, tenant, &to_write).await?;
    for ((i, _), revision) in writes.iter().zip(revisions) {
        stored[*i].1 = revision;
    }

    let managed: Vec<String> = writes
        .iter()
        .filter(|(i, (subject, _))| updates[*i].sets("manager_id") && subject.manager_id.is_some())
        .map(|(_, (subject, _))| subject.id.clone())
        .collect();
    if !managed.is_empty() {
        let in_cycles = subjects::in_cycles(tx, tenant, &managed).await?;
        let mut v = Violations::new();
        for (i, u) in updates.iter().enumerate() {
            if in_cycles.contains(&u.sent.id) {
                v.add(
                    field_of(batch, i, "subject.manager_id"),
                    format!(
                        "{:?} would manage {:?} at some remove and be managed by them",
                        u.sent.manager_id.as_deref().unwrap_or_default(),
                        u.sent.id
                    ),
                );
            }
        }
        v.into_result(())?;
    }

    let resources = subject_resources(tx, &stored).await?;
    tx.audit(resources);
    Ok(stored)
}

/// Refuses a current role the tenant does not have, naming each request.
async fn unknown_roles(
    tx: &mut TenantTx,
    caller: &Call,
    updates: &[SubjectUpdate],
    batch: bool,
) -> Result<(), ApiError> {
    let mut wanted: Vec<String> = updates
        .iter()
        .filter(|u| u.sets("current_role_id"))
        .filter_map(|u| u.sent.current_role_id.clone())
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    wanted.sort();
    wanted.dedup();
    let missing = roles::missing(tx, &caller.tenant, &wanted).await?;
    let mut v = Violations::new();
    for (i, u) in updates.iter().enumerate() {
        if let Some(role) = &u.sent.current_role_id
            && u.sets("current_role_id")
            && missing.contains(role)
        {
            v.add(
                field_of(batch, i, "subject.current_role_id"),
                format!("unknown role {role:?}"),
            );
        }
    }
    Ok(v.into_result(())?)
}

/// The audit log's record of the subjects a call wrote: named by their
/// keyed hash, the first and last of them.
async fn subject_resources(
    tx: &mut TenantTx,
    stored: &[(Subject, i64)],
) -> Result<Resources, ApiError> {
    let (Some((first, _)), Some((last, _))) = (stored.first(), stored.last()) else {
        return Ok(Resources::default());
    };
    let first_name = audit::subject_name(tx, &first.id).await?;
    if stored.len() == 1 {
        return Ok(Resources::one(first_name));
    }
    Ok(Resources {
        first: first_name,
        last: audit::subject_name(tx, &last.id).await?,
        count: stored.len() as i32,
    })
}

pub async fn list(
    state: &AppState,
    request: Request<pb::ListSubjectsRequest>,
) -> Result<Response<pb::ListSubjectsResponse>, Status> {
    state
        .in_transaction(
            methods::LIST_SUBJECTS,
            request,
            |req| {
                let page = Page::<String>::parse(&req)?;
                let filter = convert::subject_filter(&req)?;
                Ok((page, filter))
            },
            async |caller, tx, (page, filter)| {
                let (subjects, next_page_token) = page
                    .fetch(
                        state,
                        &caller.tenant,
                        tx,
                        async |tx, after, limit| {
                            subjects::list(tx, &caller.tenant, &filter, after, limit).await
                        },
                        |(subject, _)| subject.id.clone(),
                    )
                    .await?;
                Ok(pb::ListSubjectsResponse {
                    subjects: subjects
                        .iter()
                        .map(|(subject, revision)| convert::subject_to_proto(subject, *revision))
                        .collect(),
                    next_page_token,
                })
            },
        )
        .await
}
