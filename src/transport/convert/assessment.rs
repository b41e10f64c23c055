//! Evidence, subjects, scoring policies and assessments.

use uuid::Uuid;

use crate::domain::assessment::Assessment;
use crate::domain::evidence::{Correction, DEFAULT_CONFIDENCE, Evidence, Source};
use crate::domain::scoring::{
    Band, CompetencyScore, CompetencyStatus, ScoringPolicy, SourceWeights,
};
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::transport::convert::request::Mask;
use crate::transport::convert::{etag, time, uuid_text};

pub fn source_to_proto(source: Source) -> pb::EvidenceSource {
    match source {
        Source::SelfReview => pb::EvidenceSource::Self_,
        Source::Peer => pb::EvidenceSource::Peer,
        Source::Manager => pb::EvidenceSource::Manager,
        Source::DirectReport => pb::EvidenceSource::DirectReport,
        Source::Artifact => pb::EvidenceSource::Artifact,
        Source::Calibration => pb::EvidenceSource::Calibration,
    }
}

pub fn source_from_proto(value: i32) -> Option<Source> {
    Source::ALL
        .into_iter()
        .find(|s| source_to_proto(*s) as i32 == value)
}

/// A client's evidence item; `id` is the server's to assign.
pub fn evidence_from_proto(e: &pb::Evidence, id: Uuid) -> Result<Evidence, Violations> {
    let mut v = Violations::new();
    let source = source_from_proto(e.source);
    if source.is_none() {
        v.add(
            "source",
            "must be one of self, peer, manager, direct report, artifact, calibration",
        );
    }
    let observed_at = match &e.observed_at {
        Some(t) => time::from_proto(t, "observed_at")
            .map_err(|err| v.extend_prefixed("", err))
            .ok(),
        None => {
            v.add("observed_at", "is required");
            None
        }
    };
    let (Some(source), Some(observed_at)) = (source, observed_at) else {
        return Err(v);
    };
    Ok(Evidence {
        id,
        subject_id: e.subject_id.clone(),
        competency_id: e.competency_id.clone(),
        level: e.level,
        source,
        rater_id: e.rater_id.clone(),
        observed_at,
        confidence: e.confidence.unwrap_or(DEFAULT_CONFIDENCE),
        summary: e.summary.clone(),
        link: e.link.clone(),
        source_system: e.source_system.clone(),
        external_id: e.external_id.clone(),
    })
}

/// Stored evidence, with the etag of its `revision`.
pub fn evidence_to_proto((e, revision): &(Evidence, i64)) -> pb::Evidence {
    pb::Evidence {
        etag: etag::of(*revision),
        id: uuid_text(e.id),
        subject_id: e.subject_id.clone(),
        competency_id: e.competency_id.clone(),
        level: e.level,
        source: source_to_proto(e.source) as i32,
        rater_id: e.rater_id.clone(),
        observed_at: Some(time::to_proto(e.observed_at)),
        confidence: Some(e.confidence),
        summary: e.summary.clone(),
        link: e.link.clone(),
        source_system: e.source_system.clone(),
        external_id: e.external_id.clone(),
        // Ids are UUIDv7: their time part is when the server accepted the item.
        create_time: e
            .id
            .get_timestamp()
            .and_then(|ts| {
                let (secs, nanos) = ts.to_unix();
                chrono::DateTime::from_timestamp(secs as i64, nanos)
            })
            .map(time::to_proto),
    }
}

/// The paths `UpdateEvidence` accepts: what a correction may change.
pub const EVIDENCE_PATHS: [&str; 7] = [
    "level",
    "source",
    "rater_id",
    "observed_at",
    "confidence",
    "summary",
    "link",
];

/// The masked fields of `e` as a correction, validated as ingest validates
/// them; violations are named from the request (`evidence.level`).
pub fn correction_from_proto(
    e: &pb::Evidence,
    mask: &Mask,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Correction, Violations> {
    let mut v = Violations::new();
    let masked = |path: &str| mask.covers(path);
    let source = if masked("source") {
        let source = source_from_proto(e.source);
        if source.is_none() {
            v.add(
                "evidence.source",
                "must be one of self, peer, manager, direct report, artifact, calibration",
            );
        }
        source
    } else {
        None
    };
    let observed_at = match (&e.observed_at, masked("observed_at")) {
        (_, false) => None,
        (Some(t), true) => time::from_proto(t, "evidence.observed_at")
            .map_err(|err| v.0.extend(err.0))
            .ok(),
        (None, true) => {
            v.add(
                "evidence.observed_at",
                "is required when update_mask names it",
            );
            None
        }
    };
    let text = |path: &str, value: &String| masked(path).then(|| value.clone());
    let correction = Correction {
        level: masked("level").then_some(e.level),
        source,
        rater_id: text("rater_id", &e.rater_id),
        observed_at,
        // Not sent is the default, as at ingest.
        confidence: masked("confidence").then(|| e.confidence.unwrap_or(DEFAULT_CONFIDENCE)),
        summary: text("summary", &e.summary),
        link: text("link", &e.link),
    };
    v.extend_prefixed("evidence", correction.validate(now));
    v.into_result(correction)
}

/// A subject id from a request: an opaque HRIS id, never an e-mail address.
pub fn subject_id(value: &str, field: &str) -> Result<String, Violations> {
    crate::domain::evidence::opaque_id_violations(field, value, true).into_result(value.to_string())
}

/// A UUID sent as a string, or a violation naming `field`.
pub fn uuid(value: &str, field: &str) -> Result<Uuid, Violations> {
    Uuid::parse_str(value).map_err(|_| Violations::one(field, "must be a UUID"))
}

pub fn policy_to_proto(policy: &ScoringPolicy, revision: i64) -> pb::ScoringPolicy {
    let w = &policy.source_weights;
    pb::ScoringPolicy {
        half_life_days: policy.half_life_days,
        source_weights: Some(pb::SourceWeights {
            self_: w.self_review,
            peer: w.peer,
            manager: w.manager,
            direct_report: w.direct_report,
            artifact: w.artifact,
            calibration: w.calibration,
        }),
        prior_mean: policy.prior_mean,
        prior_strength: policy.prior_strength,
        sigma: policy.sigma,
        min_evidence: policy.min_evidence,
        etag: etag::of(revision),
        update_time: None,
        rater_calibration: policy.rater_calibration,
        calibration_window_days: i32::try_from(policy.calibration_window_days).unwrap_or(i32::MAX),
        rater_prior_strength: policy.rater_prior_strength,
    }
}

/// The fields of a scoring policy an update can name.
const POLICY_FIELDS: [&str; 9] = [
    "half_life_days",
    "prior_mean",
    "prior_strength",
    "sigma",
    "min_evidence",
    "source_weights",
    "rater_calibration",
    "calibration_window_days",
    "rater_prior_strength",
];

/// The paths `UpdateScoringPolicy` accepts: every field, and one source
/// weight as `source_weights.<source>`.
pub fn policy_paths() -> Vec<String> {
    POLICY_FIELDS
        .iter()
        .map(|f| f.to_string())
        .chain(Source::ALL.iter().map(|s| source_weight_path(*s)))
        .collect()
}

fn source_weight_path(source: Source) -> String {
    format!("source_weights.{}", source.as_str())
}

/// `current` with the masked fields of `update`, validated; violations are
/// named from the request (`policy.sigma`).
pub fn merge_policy(
    mut policy: ScoringPolicy,
    update: &pb::ScoringPolicy,
    mask: &Mask,
) -> Result<ScoringPolicy, Violations> {
    let weights = match update.source_weights {
        Some(w) => SourceWeights {
            self_review: w.self_,
            peer: w.peer,
            manager: w.manager,
            direct_report: w.direct_report,
            artifact: w.artifact,
            calibration: w.calibration,
        },
        // Absent is not "all zero": a masked field must be sent.
        None if mask.touches("source_weights") => {
            return Err(Violations::one(
                "policy.source_weights",
                "is required when update_mask names it",
            ));
        }
        None => SourceWeights::default(),
    };
    for (path, field, value) in [
        (
            "half_life_days",
            &mut policy.half_life_days,
            update.half_life_days,
        ),
        ("prior_mean", &mut policy.prior_mean, update.prior_mean),
        (
            "prior_strength",
            &mut policy.prior_strength,
            update.prior_strength,
        ),
        ("sigma", &mut policy.sigma, update.sigma),
        (
            "min_evidence",
            &mut policy.min_evidence,
            update.min_evidence,
        ),
        (
            "rater_prior_strength",
            &mut policy.rater_prior_strength,
            update.rater_prior_strength,
        ),
    ] {
        if mask.covers(path) {
            *field = value;
        }
    }
    if mask.covers("rater_calibration") {
        policy.rater_calibration = update.rater_calibration;
    }
    if mask.covers("calibration_window_days") {
        // A negative count of days is out of range like 0 is: validation names it.
        policy.calibration_window_days = u32::try_from(update.calibration_window_days).unwrap_or(0);
    }
    for source in Source::ALL {
        if mask.covers(&source_weight_path(source)) {
            policy.source_weights.set(source, weights.get(source));
        }
    }
    let mut v = Violations::new();
    if let Err(found) = policy.validate() {
        v.extend_prefixed("policy", found);
    }
    v.into_result(policy)
}

pub fn status_to_proto(status: CompetencyStatus) -> pb::CompetencyStatus {
    match status {
        CompetencyStatus::InsufficientEvidence => pb::CompetencyStatus::InsufficientEvidence,
        CompetencyStatus::Below => pb::CompetencyStatus::Below,
        CompetencyStatus::Meets => pb::CompetencyStatus::Meets,
        CompetencyStatus::Exceeds => pb::CompetencyStatus::Exceeds,
    }
}

pub fn band_to_proto(band: Band) -> pb::ReadinessBand {
    match band {
        Band::InsufficientEvidence => pb::ReadinessBand::InsufficientEvidence,
        Band::NotYet => pb::ReadinessBand::NotYet,
        Band::Developing => pb::ReadinessBand::Developing,
        Band::Ready => pb::ReadinessBand::Ready,
    }
}

pub fn competency_score_to_proto(c: &CompetencyScore) -> pb::CompetencyAssessment {
    pb::CompetencyAssessment {
        competency_id: c.competency_id.clone(),
        expected_level: i32::from(c.expected_level),
        weight: c.weight,
        critical: c.critical,
        effective_evidence: c.n,
        estimated_level: c.m,
        standard_deviation: c.sd,
        probability: c.p,
        gap: c.gap,
        disagreement: c.disagreement,
        status: status_to_proto(c.status) as i32,
        conflicting: c.conflicting,
        contributions: c
            .contributions
            .iter()
            .map(|k| pb::EvidenceContribution {
                evidence_id: uuid_text(k.evidence_id),
                weight: k.weight,
                rater_adjustment: k.rater_adjustment,
            })
            .collect(),
    }
}

pub fn assessment_to_proto(a: &Assessment) -> pb::Assessment {
    let mut policy = policy_to_proto(&a.policy, 0);
    // A snapshot's policy is not an editable resource.
    policy.etag.clear();
    pb::Assessment {
        id: uuid_text(a.id),
        subject_id: a.subject_id.clone(),
        role_id: a.role_id.clone(),
        rubric_version: a.rubric_version,
        as_of: Some(time::to_proto(a.as_of)),
        policy: Some(policy),
        competencies: a
            .score
            .competencies
            .iter()
            .map(competency_score_to_proto)
            .collect(),
        readiness: a.score.readiness,
        supported_readiness: a.score.supported_readiness,
        coverage: a.score.coverage,
        band: band_to_proto(a.score.band) as i32,
        create_time: Some(time::to_proto(a.create_time)),
        calibration_id: a.calibration_id.map(uuid_text).unwrap_or_default(),
    }
}
