//! Recommendations, track fits and evidence plans.

use crate::domain::recommend::{
    CollectionReason, EvidenceToCollect, Gap, Recommendation, Recommendations, Strength, TrackFit,
};
use crate::proto::v1 as pb;
use crate::transport::convert::assessment::{band_to_proto, source_to_proto};

fn strength_to_proto(s: Strength) -> pb::Strength {
    pb::Strength {
        competency_id: s.competency_id,
        expected_level: i32::from(s.expected_level),
        estimated_level: s.estimated_level,
        probability: s.probability,
    }
}

fn gap_to_proto(g: Gap) -> pb::Gap {
    pb::Gap {
        competency_id: g.competency_id,
        expected_level: i32::from(g.expected_level),
        estimated_level: g.estimated_level,
        probability: g.probability,
        shortfall: g.shortfall,
        development_actions: g.development_actions,
    }
}

fn count(n: Option<u32>) -> Option<i32> {
    n.map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

fn to_collect_to_proto(e: EvidenceToCollect) -> pb::EvidenceToCollect {
    pb::EvidenceToCollect {
        competency_id: e.competency_id,
        reason: match e.reason {
            CollectionReason::InsufficientEvidence => pb::CollectionReason::InsufficientEvidence,
            CollectionReason::Gap => pb::CollectionReason::Gap,
        } as i32,
        probability: e.probability,
        sources: e
            .sources
            .into_iter()
            .map(|p| pb::SourcePlan {
                source: source_to_proto(p.source) as i32,
                observations_for_even_odds: count(p.for_even_odds),
                observations_for_confidence: count(p.for_confidence),
                observations_for_enough_evidence: count(p.for_enough_evidence),
            })
            .collect(),
    }
}

fn recommendation_to_proto(r: Recommendation) -> pb::Recommendation {
    pb::Recommendation {
        role_id: r.role_id,
        role_name: r.role_name,
        track_id: r.track,
        rubric_version: r.rubric_version,
        path: r.path,
        steps: r.steps.map_or(0, |s| s as i32),
        readiness: r.totals.readiness,
        supported_readiness: r.totals.supported_readiness,
        band: band_to_proto(r.totals.band) as i32,
        coverage: r.totals.coverage,
        strengths: r.strengths.into_iter().map(strength_to_proto).collect(),
        gaps: r.gaps.into_iter().map(gap_to_proto).collect(),
        evidence_to_collect: r
            .evidence_to_collect
            .into_iter()
            .map(to_collect_to_proto)
            .collect(),
    }
}

pub fn recommendations_to_proto(
    subject_id: &str,
    current_role_id: &str,
    as_of: chrono::DateTime<chrono::Utc>,
    r: Recommendations,
) -> pb::RecommendResponse {
    pb::RecommendResponse {
        subject_id: subject_id.to_string(),
        current_role_id: current_role_id.to_string(),
        as_of: Some(super::time::to_proto(as_of)),
        recommendations: r
            .recommendations
            .into_iter()
            .map(recommendation_to_proto)
            .collect(),
        track_fits: r
            .track_fits
            .into_iter()
            .map(|f: TrackFit| pb::TrackFit {
                track_id: f.track_id,
                track_name: f.track_name,
                fit: f.fit,
                best_role_id: f.best_role_id.unwrap_or_default(),
            })
            .collect(),
    }
}
