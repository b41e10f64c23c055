//! What scoring requires of each observation.

use crate::domain::evidence::Observation;
use crate::domain::validation::Violations;

/// Every violation, with field paths `evidence[i].level` and so on. The source
/// needs no check: it is an enum, so always a known one.
pub fn validate_evidence(evidence: &[Observation]) -> Result<(), Violations> {
    let mut violations = Violations::new();
    for (i, observation) in evidence.iter().enumerate() {
        let field = |name: &str| format!("evidence[{i}].{name}");
        if observation.competency_id.is_empty() {
            violations.add(field("competency_id"), "must not be empty");
        }
        if !(1.0..=5.0).contains(&observation.level) {
            violations.add(field("level"), "must be a number in [1, 5]");
        }
        let confidence = observation.confidence;
        if !(confidence > 0.0 && confidence <= 1.0) {
            violations.add(field("confidence"), "must be in (0, 1]");
        }
    }
    violations.into_result(())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::domain::evidence::Source;

    fn observation(competency_id: &str, level: f64, confidence: f64) -> Observation {
        Observation {
            id: Uuid::nil(),
            competency_id: competency_id.into(),
            level,
            source: Source::Peer,
            confidence,
            observed_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn accepts_the_closed_ends_of_the_ranges() {
        let evidence = [
            observation("a", 1.0, 1.0),
            observation("a", 5.0, f64::MIN_POSITIVE),
        ];
        assert_eq!(validate_evidence(&evidence), Ok(()));
        assert_eq!(validate_evidence(&[]), Ok(()));
    }

    #[test]
    fn names_every_bad_field() {
        let evidence = [
            observation("a", 3.0, 0.5),
            observation("", 0.99, 0.0),
            observation("b", f64::NAN, f64::NAN),
            observation("c", 5.01, 1.01),
            observation("d", f64::INFINITY, -0.5),
        ];
        let fields: Vec<String> = validate_evidence(&evidence).unwrap_err().fields();
        assert_eq!(
            fields,
            [
                "evidence[1].competency_id",
                "evidence[1].level",
                "evidence[1].confidence",
                "evidence[2].level",
                "evidence[2].confidence",
                "evidence[3].level",
                "evidence[3].confidence",
                "evidence[4].level",
                "evidence[4].confidence",
            ]
        );
    }
}
