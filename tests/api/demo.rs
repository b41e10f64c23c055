//! The demo organisation of `examples/demo/`: its generator is deterministic
//! and the committed files are its output, and imported through the real
//! `ladder evidence import` it shows every readiness band, with the people
//! built to be ready for Staff Engineer or Engineering Manager found READY.

use std::collections::BTreeSet;
use std::process::Command;

use ladder::proto::v1 as pb;

use crate::harness::{TestServer, ladder_bin, token};

#[path = "../../examples/demo_org/org.rs"]
mod org;

#[test]
fn the_generator_is_deterministic_and_the_committed_files_are_its_output() {
    let demo = org::generate(org::DEFAULT_SEED);
    assert_eq!(demo, org::generate(org::DEFAULT_SEED));
    assert_ne!(demo.evidence_csv, org::generate(7).evidence_csv);
    let committed = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/examples/demo/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    // If this fails after changing the generator: `cargo run --example demo_org`.
    assert!(demo.evidence_csv == committed("evidence.csv"));
    assert_eq!(demo.subjects_csv, committed("subjects.csv"));
    assert_eq!(demo.raters_csv, committed("raters.csv"));
    assert_eq!(demo.labels_csv, committed("labels.csv"));
    assert_eq!(demo.subjects_csv.lines().count() - 1, 60);
    let sources: BTreeSet<&str> = demo
        .evidence_csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap())
        .collect();
    assert_eq!(sources.len(), 6, "{sources:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_imported_demo_shows_every_band() {
    let server = TestServer::start().await;
    let file = format!("{}/examples/demo/evidence.csv", env!("CARGO_MANIFEST_DIR"));
    let errors = tempfile::tempdir().unwrap();
    let out = Command::new(ladder_bin())
        .args(["evidence", "import", &file, "--shift-dates-to-today"])
        .args(["--server", &server.url(), "--token", &token("tenant-a")])
        .arg("--errors")
        .arg(errors.path().join("errors.csv"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("4644 created, 0 already present, 0 rejected"),
        "{said}"
    );

    let mut clients = server.clients("tenant-a").await;
    let mut bands = BTreeSet::new();
    let demo = org::generate(org::DEFAULT_SEED);
    for subject in demo.subjects_csv.lines().skip(1) {
        let fields: Vec<&str> = subject.split(',').collect();
        let (subject, current_role, profile) = (fields[0], fields[1], fields[4]);
        for role in [current_role, "staff_engineer", "engineering_manager"] {
            let assessment = clients
                .assessment
                .create_assessment(pb::CreateAssessmentRequest {
                    subject_id: subject.into(),
                    role_id: role.into(),
                    validate_only: true,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .assessment
                .unwrap();
            let band = pb::ReadinessBand::try_from(assessment.band).unwrap();
            bands.insert(band as i32);
            let expected = match (profile, role) {
                ("staff_ready", "staff_engineer") if current_role != role => {
                    Some(pb::ReadinessBand::Ready)
                }
                ("manager_ready", "engineering_manager") => Some(pb::ReadinessBand::Ready),
                ("struggling", "staff_engineer") => Some(pb::ReadinessBand::NotYet),
                ("new_hire", "staff_engineer") => Some(pb::ReadinessBand::InsufficientEvidence),
                _ => None,
            };
            if let Some(expected) = expected {
                assert_eq!(band, expected, "{subject} ({profile}) against {role}");
            }
        }
    }
    assert_eq!(
        bands,
        [
            pb::ReadinessBand::InsufficientEvidence,
            pb::ReadinessBand::NotYet,
            pb::ReadinessBand::Developing,
            pb::ReadinessBand::Ready,
        ]
        .map(|b| b as i32)
        .into_iter()
        .collect()
    );
}

/// The demo's subjects.csv, imported through the real `ladder subject
/// import`, gives every person their role, team (as an org unit) and
/// manager: teams can be asked about by unit and by manager.
#[tokio::test(flavor = "multi_thread")]
async fn the_imported_demo_subjects_have_teams_and_managers() {
    let server = TestServer::start().await;
    let file = format!("{}/examples/demo/subjects.csv", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(ladder_bin())
        .args(["subject", "import", &file])
        .args(["--server", &server.url(), "--token", &token("tenant-a")])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("60 subject(s) updated, 0 rejected"), "{said}");

    let mut clients = server.clients("tenant-a").await;
    let mut count = async |request: pb::ListSubjectsRequest| {
        clients
            .assessment
            .list_subjects(pb::ListSubjectsRequest {
                page_size: 1000,
                ..request
            })
            .await
            .unwrap()
            .into_inner()
            .subjects
            .len()
    };
    let platform = pb::ListSubjectsRequest {
        org_unit: "engineering/platform".into(),
        ..Default::default()
    };
    // The platform team and the two teams below it.
    assert_eq!(count(platform).await, 7 + 6 + 7);
    let everyone_in_engineering = pb::ListSubjectsRequest {
        manager_id: "dir-eng".into(),
        include_indirect_reports: true,
        ..Default::default()
    };
    assert_eq!(count(everyone_in_engineering).await, 55);
    let payments_team = pb::ListSubjectsRequest {
        manager_id: "emp-1001".into(),
        ..Default::default()
    };
    assert_eq!(count(payments_team).await, 6);
}
