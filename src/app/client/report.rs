//! What the client commands print: readable tables, or JSON (the canonical
//! proto3 JSON mapping) for scripts.

use prost::Message;
use prost_reflect::DynamicMessage;

use crate::app::error::AppError;
use crate::domain::evidence::Source;
use crate::proto::v1 as pb;
use crate::transport::convert::assessment::source_from_proto;

/// How many competencies worth collecting evidence for are shown per role
/// (`--json` has them all).
const SHOWN_TO_COLLECT: usize = 3;

/// A message in the proto3 JSON mapping.
pub fn to_json<M: Message>(message: &M, full_name: &str) -> Result<String, AppError> {
    let descriptor = crate::proto::descriptor_pool()
        .get_message_by_name(full_name)
        .ok_or_else(|| AppError::Config(format!("no message {full_name}")))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| AppError::Config(format!("re-decoding {full_name}: {e}")))?;
    serde_json::to_string_pretty(&dynamic).map_err(|e| AppError::Config(e.to_string()))
}

/// A readiness band as people read it: `READY`, `NOT YET`.
pub fn band_name(band: i32) -> &'static str {
    match pb::ReadinessBand::try_from(band) {
        Ok(pb::ReadinessBand::Ready) => "READY",
        Ok(pb::ReadinessBand::Developing) => "DEVELOPING",
        Ok(pb::ReadinessBand::NotYet) => "NOT YET",
        Ok(pb::ReadinessBand::InsufficientEvidence) => "INSUFFICIENT EVIDENCE",
        Ok(pb::ReadinessBand::Unspecified) | Err(_) => "unknown band",
    }
}

/// A competency's status as people read it: `meets`, `insufficient evidence`.
pub fn status_name(status: i32) -> &'static str {
    match pb::CompetencyStatus::try_from(status) {
        Ok(pb::CompetencyStatus::Exceeds) => "exceeds",
        Ok(pb::CompetencyStatus::Meets) => "meets",
        Ok(pb::CompetencyStatus::Below) => "below",
        Ok(pb::CompetencyStatus::InsufficientEvidence) => "insufficient evidence",
        Ok(pb::CompetencyStatus::Unspecified) | Err(_) => "unknown status",
    }
}

/// A bar of `width` cells filled in proportion to `fraction`.
fn bar(fraction: f64, width: usize) -> String {
    let filled = (fraction.clamp(0.0, 1.0) * width as f64).round() as usize;
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

pub fn assessment(a: &pb::Assessment) -> String {
    let mut out = format!(
        "{} against {} (rubric v{}) as of {}\n\n{:<26} {:>8} {:<17} {:>6}  {:<22}\n",
        a.subject_id,
        a.role_id,
        a.rubric_version,
        a.as_of.map(|t| t.to_string()).unwrap_or_default(),
        "competency",
        "expected",
        "estimate ± sd",
        "p",
        "status",
    );
    for c in &a.competencies {
        let flags = [(c.critical, " critical"), (c.conflicting, " conflicting")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| *f)
            .collect::<String>();
        // Without enough evidence the estimate is the prior's, not a
        // measurement: it is not drawn like one.
        let (estimate, probability) =
            if c.status == pb::CompetencyStatus::InsufficientEvidence as i32 {
                ("not yet evidenced".to_string(), "-".to_string())
            } else {
                (
                    format!("{:>6.2} ± {:<4.2}", c.estimated_level, c.standard_deviation),
                    format!("{:.3}", c.probability),
                )
            };
        out.push_str(&format!(
            "{:<26} {:>8} {:<17} {:>6}  {:<22}{}\n",
            c.competency_id,
            c.expected_level,
            estimate,
            probability,
            status_name(c.status),
            flags,
        ));
    }
    out.push_str(&format!(
        "\nsupported {:.3} {}  readiness {:.3}  coverage {:.3}  band {}\n",
        a.supported_readiness,
        bar(a.supported_readiness, 20),
        a.readiness,
        a.coverage,
        band_name(a.band),
    ));
    if !a.calibration_id.is_empty() {
        out.push_str(&format!(
            "rater leniency removed with calibration {}\n",
            a.calibration_id
        ));
    }
    out
}

pub fn recommendations(r: &pb::RecommendResponse) -> String {
    let mut out = format!("{} (now {})\n", r.subject_id, r.current_role_id);
    for (i, rec) in r.recommendations.iter().enumerate() {
        let path = if rec.path.is_empty() {
            "not on a path from the current role".to_string()
        } else {
            rec.path.join(" → ")
        };
        out.push_str(&format!(
            "\n{}. {} ({})  supported {} {:.2}  readiness {:.2}  {}  coverage {:.2}\n   path: {}\n",
            i + 1,
            rec.role_name,
            rec.role_id,
            bar(rec.supported_readiness, 20),
            rec.supported_readiness,
            rec.readiness,
            band_name(rec.band),
            rec.coverage,
            path,
        ));
        if !rec.strengths.is_empty() {
            let names: Vec<&str> = rec
                .strengths
                .iter()
                .map(|s| s.competency_id.as_str())
                .collect();
            out.push_str(&format!("   strengths: {}\n", names.join(", ")));
        }
        for gap in &rec.gaps {
            out.push_str(&format!(
                "   gap: {} (expected {}, estimate {:.2}, p {:.2})\n",
                gap.competency_id, gap.expected_level, gap.estimated_level, gap.probability
            ));
            for action in &gap.development_actions {
                out.push_str(&format!("     - {action}\n"));
            }
        }
        for want in rec.evidence_to_collect.iter().take(SHOWN_TO_COLLECT) {
            let plans: Vec<String> = want
                .sources
                .iter()
                .map(|p| {
                    let n = |v: Option<i32>| v.map_or("-".to_string(), |v| v.to_string());
                    format!(
                        "{} {}→scored, {}→p≥0.5, {}→p≥0.8",
                        source_from_proto(p.source).map_or("?", Source::as_str),
                        n(p.observations_for_enough_evidence),
                        n(p.observations_for_even_odds),
                        n(p.observations_for_confidence)
                    )
                })
                .collect();
            out.push_str(&format!(
                "   collect: {} ({}): {}\n",
                want.competency_id,
                match pb::CollectionReason::try_from(want.reason) {
                    Ok(pb::CollectionReason::Gap) => "not yet p≥0.8",
                    _ => "too little evidence",
                },
                plans.join("; ")
            ));
        }
    }
    out.push_str("\ntrack fit (what the evidence supports):\n");
    for fit in &r.track_fits {
        let best = if fit.best_role_id.is_empty() {
            "no evidence points here yet"
        } else {
            fit.best_role_id.as_str()
        };
        out.push_str(&format!(
            "  {:<24} {} {:.2}  {}\n",
            fit.track_name,
            bar(fit.fit, 20),
            fit.fit,
            best
        ));
    }
    out
}
