//! Subjects: updates one at a time or in batches (AIP-233), and listings.

use crate::domain::assessment::Subject;
use crate::domain::evidence::opaque_id_violations;
use crate::domain::framework::check_id;
use crate::domain::subject::{manager_violations, org_unit_violations};
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::storage::subjects::SubjectFilter;
use crate::transport::convert::etag;
use crate::transport::convert::request::Update;

/// The paths `UpdateSubject` accepts.
pub const SUBJECT_PATHS: [&str; 3] = ["current_role_id", "org_unit", "manager_id"];

pub fn subject_to_proto(subject: &Subject, revision: i64) -> pb::Subject {
    pb::Subject {
        id: subject.id.clone(),
        current_role_id: subject.current_role_id.clone().unwrap_or_default(),
        etag: etag::of(revision),
        update_time: None,
        org_unit: subject.org_unit.clone().unwrap_or_default(),
        manager_id: subject.manager_id.clone().unwrap_or_default(),
    }
}

/// One `UpdateSubjectRequest`, validated: the values it sends for the
/// fields its mask names, and what it expects to find.
#[derive(Debug)]
pub struct SubjectUpdate {
    /// The request's subject; only the masked fields count.
    pub sent: Subject,
    pub update: Update,
    pub allow_missing: bool,
}

impl SubjectUpdate {
    /// Whether the update sets `path`.
    pub fn sets(&self, path: &str) -> bool {
        self.update.mask.covers(path)
    }

    /// `stored` with the masked fields replaced by the sent ones.
    pub fn merge(&self, mut stored: Subject) -> Subject {
        if self.sets("current_role_id") {
            stored.current_role_id = self.sent.current_role_id.clone();
        }
        if self.sets("org_unit") {
            stored.org_unit = self.sent.org_unit.clone();
        }
        if self.sets("manager_id") {
            stored.manager_id = self.sent.manager_id.clone();
        }
        stored
    }
}

/// Parses an `UpdateSubjectRequest`, naming fields as the request does
/// (`subject.org_unit`, `update_mask`). A masked field sent empty clears
/// it; fields the mask does not name are ignored (AIP-134).
pub fn subject_update(req: pb::UpdateSubjectRequest) -> Result<SubjectUpdate, Violations> {
    let Some(input) = req.subject else {
        return Err(Violations::one("subject", "is required"));
    };
    let mut v = Violations::new();
    let update = Update::parse(
        req.update_mask,
        &input,
        &SUBJECT_PATHS,
        &input.etag,
        "subject.etag",
    )
    .map_err(|e| v.0.extend(e.0))
    .ok();
    v.0.extend(opaque_id_violations("subject.id", &input.id, true).0);
    let sets = |path| update.as_ref().is_some_and(|u| u.mask.covers(path));
    if sets("current_role_id") && !input.current_role_id.is_empty() {
        check_id(&mut v, "subject.current_role_id", &input.current_role_id);
    }
    if sets("org_unit") && !input.org_unit.is_empty() {
        v.0.extend(org_unit_violations("subject.org_unit", &input.org_unit).0);
    }
    if sets("manager_id") && !input.manager_id.is_empty() {
        v.0.extend(manager_violations("subject.manager_id", &input.id, &input.manager_id).0);
    }
    let filled = |value: String| Some(value).filter(|v| !v.is_empty());
    let sent = Subject {
        id: input.id,
        current_role_id: filled(input.current_role_id),
        org_unit: filled(input.org_unit),
        manager_id: filled(input.manager_id),
    };
    match update {
        Some(update) if v.is_empty() => Ok(SubjectUpdate {
            sent,
            update,
            allow_missing: req.allow_missing,
        }),
        _ => Err(v),
    }
}

/// Parses a `BatchUpdateSubjectsRequest` whole, naming each bad request
/// `requests[i]...`; its size first, before any request is looked at.
pub fn batch_update(
    requests: Vec<pb::UpdateSubjectRequest>,
    max_batch: usize,
) -> Result<Vec<SubjectUpdate>, Violations> {
    if requests.is_empty() {
        return Err(Violations::one(
            "requests",
            "must hold at least one request",
        ));
    }
    if requests.len() > max_batch {
        return Err(Violations::one(
            "requests",
            format!("must hold at most {max_batch} entries"),
        ));
    }
    let mut v = Violations::new();
    let mut seen = std::collections::HashSet::new();
    let mut updates = Vec::with_capacity(requests.len());
    for (i, req) in requests.into_iter().enumerate() {
        let prefix = format!("requests[{i}]");
        if let Some(subject) = &req.subject
            && !subject.id.is_empty()
            && !seen.insert(subject.id.clone())
        {
            v.add(
                format!("{prefix}.subject.id"),
                "names a subject an earlier request of the batch names",
            );
        }
        match subject_update(req) {
            Ok(update) => updates.push(update),
            Err(found) => v.extend_prefixed(&prefix, found),
        }
    }
    v.into_result(updates)
}

/// The filters of a `ListSubjectsRequest`.
pub fn subject_filter(req: &pb::ListSubjectsRequest) -> Result<SubjectFilter, Violations> {
    let mut v = Violations::new();
    if !req.org_unit.is_empty() {
        v.0.extend(org_unit_violations("org_unit", &req.org_unit).0);
    }
    if !req.manager_id.is_empty() {
        v.0.extend(opaque_id_violations("manager_id", &req.manager_id, false).0);
    } else if req.include_indirect_reports {
        v.add("include_indirect_reports", "needs manager_id");
    }
    if !req.current_role_id.is_empty() {
        check_id(&mut v, "current_role_id", &req.current_role_id);
    }
    let filled = |value: &str| Some(value.to_string()).filter(|v| !v.is_empty());
    v.into_result(SubjectFilter {
        org_unit: filled(&req.org_unit),
        manager_id: filled(&req.manager_id),
        indirect_reports: req.include_indirect_reports,
        current_role_id: filled(&req.current_role_id),
    })
}
