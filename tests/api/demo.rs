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

/// `ladder` with the server and the demo tenant's token; its output.
fn ladder_on(server: &TestServer, args: &[&str]) -> std::process::Output {
    Command::new(ladder_bin())
        .args(args)
        .args(["--server", &server.url(), "--token", &token("tenant-a")])
        .output()
        .unwrap()
}

/// The built-in framework without Senior Engineer (held by most of the
/// demo's people), without mentoring (about which they have evidence) and
/// without the business track and its roles.
fn framework_without_senior_engineer() -> String {
    let builtin = ladder::domain::framework::Document::builtin()
        .to_yaml()
        .unwrap();
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&builtin).unwrap();
    let gone_roles = [
        "senior_engineer",
        "solutions_engineer",
        "sales_engineer",
        "developer_advocate",
        "startup_ceo",
    ];
    let tracks = doc["tracks"].as_sequence_mut().unwrap();
    tracks.retain(|t| t["id"] != "business");
    let competencies = doc["competencies"].as_sequence_mut().unwrap();
    competencies.retain(|c| c["id"] != "mentoring");
    let roles = doc["roles"].as_sequence_mut().unwrap();
    roles.retain(|r| !gone_roles.contains(&r["id"].as_str().unwrap()));
    for role in roles.iter_mut() {
        role["transitions"]
            .as_sequence_mut()
            .unwrap()
            .retain(|t| !gone_roles.contains(&t["to"].as_str().unwrap()));
        role["rubric"]["competencies"]
            .as_sequence_mut()
            .unwrap()
            .retain(|c| c["competency"] != "mentoring");
    }
    serde_yaml_ng::to_string(&doc).unwrap()
}

/// SPEC §6: a prune that retires a role people hold is refused unless it
/// reassigns them or allows stranding them; either way their assessments
/// and recommendations keep working, and re-sent evidence about a retired
/// competency is already present.
#[tokio::test(flavor = "multi_thread")]
async fn a_prune_of_a_held_role_never_strands_the_demo_people() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let examples = format!("{}/examples/demo", env!("CARGO_MANIFEST_DIR"));
    let subjects = format!("{examples}/subjects.csv");
    let evidence = format!("{examples}/evidence.csv");
    let import_evidence = || {
        ladder_on(
            &server,
            &["evidence", "import", &evidence, "--shift-dates-to-today"],
        )
    };
    assert!(
        ladder_on(&server, &["subject", "import", &subjects])
            .status
            .success()
    );
    assert!(import_evidence().status.success());
    let holders = org::generate(org::DEFAULT_SEED)
        .subjects_csv
        .lines()
        .filter(|l| l.split(',').nth(1) == Some("senior_engineer"))
        .count();
    assert!(holders > 10, "{holders}");

    let file = dir.path().join("framework.yaml");
    std::fs::write(&file, framework_without_senior_engineer()).unwrap();
    let file = file.to_str().unwrap();
    let mut clients = server.clients("tenant-a").await;
    let roles_held = async |clients: &mut crate::harness::Clients| {
        let response = clients
            .assessment
            .list_subjects(pb::ListSubjectsRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        response
            .subjects
            .iter()
            .filter(|s| s.current_role_id == "senior_engineer")
            .count()
    };

    // Refused, dry run or not, naming the role and how many hold it.
    for flags in [&["--prune", "--dry-run"][..], &["--prune"]] {
        let mut args = vec!["framework", "import", file];
        args.extend_from_slice(flags);
        let out = ladder_on(&server, &args);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{said}");
        assert!(
            said.contains(&format!("senior_engineer ({holders} subjects)")),
            "{said}"
        );
        assert!(said.contains("--reassign OLD=NEW"), "{said}");
    }
    assert_eq!(roles_held(&mut clients).await, holders);

    // The dry run with --allow-stranded counts the holders and the evidence.
    let out = ladder_on(
        &server,
        &[
            "framework",
            "import",
            file,
            "--prune",
            "--allow-stranded",
            "--dry-run",
        ],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mentoring = org::generate(org::DEFAULT_SEED)
        .evidence_csv
        .lines()
        .filter(|l| l.split(',').nth(1) == Some("mentoring"))
        .count();
    for line in [
        format!("retired   role senior_engineer (current role of {holders} subjects"),
        format!("retired   competency mentoring ({mentoring} evidence items"),
        "retired   track business".to_string(),
        "retired   role startup_ceo".to_string(),
    ] {
        assert!(said.contains(&line), "{line}\n{said}");
    }

    // Stranded: the people keep the retired role, read as it was.
    let out = ladder_on(
        &server,
        &["framework", "import", file, "--prune", "--allow-stranded"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(roles_held(&mut clients).await, holders);
    let tracks = clients
        .rubric
        .list_tracks(pb::ListTracksRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tracks;
    let track_ids: Vec<&str> = tracks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        track_ids,
        ["individual_contributor", "management", "product"]
    );
    let recommend = async |clients: &mut crate::harness::Clients| {
        clients
            .recommendation
            .recommend(pb::RecommendRequest {
                subject_id: "emp-1002".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    };
    let stranded = recommend(&mut clients).await;
    assert!(!stranded.recommendations.is_empty());
    assert!(
        stranded
            .recommendations
            .iter()
            .any(|r| r.role_id == "staff_engineer"),
        "the retired role's moves out still lead somewhere"
    );
    assert!(stranded.track_fits.iter().all(|f| f.track_id != "business"));
    let assessed = clients
        .assessment
        .create_assessment(pb::CreateAssessmentRequest {
            subject_id: "emp-1002".into(),
            role_id: "staff_engineer".into(),
            validate_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(assessed.assessment.is_some());
    // Against the retired role itself: the version it had, as it was.
    let own = clients
        .assessment
        .create_assessment(pb::CreateAssessmentRequest {
            subject_id: "emp-1002".into(),
            role_id: "senior_engineer".into(),
            validate_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(own.rubric_version, 1);

    // Retries stay idempotent: evidence about mentoring is already present.
    let out = import_evidence();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("0 created, 4644 already present, 0 rejected"),
        "{said}"
    );
    // New evidence about the retired competency is refused, and a typo gets
    // the competency it most likely meant; nothing is written.
    let item = |competency: &str, key: &str| pb::Evidence {
        subject_id: "emp-1002".into(),
        competency_id: competency.into(),
        level: 3.0,
        source: pb::EvidenceSource::Peer as i32,
        rater_id: "emp-1003".into(),
        observed_at: Some(prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp() - 86_400,
            nanos: 0,
        }),
        confidence: Some(0.8),
        source_system: "test".into(),
        external_id: key.into(),
        ..Default::default()
    };
    let before = server.count("evidence").await;
    let refused = clients
        .assessment
        .batch_create_evidence(pb::BatchCreateEvidenceRequest {
            evidence: vec![
                item("mentoring", "new-1"),
                item("system_design", "new-2"),
                item("system_desing", "new-3"),
            ],
        })
        .await
        .unwrap_err();
    let violations: Vec<(String, String)> = {
        use tonic_types::StatusExt;
        refused
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| (v.field, v.description))
            .collect()
    };
    assert_eq!(
        violations,
        [
            (
                "evidence[0].competency_id".to_string(),
                "unknown competency \"mentoring\"".to_string()
            ),
            (
                "evidence[2].competency_id".to_string(),
                "unknown competency \"system_desing\" (did you mean \"system_design\"?)"
                    .to_string()
            ),
        ]
    );
    assert_eq!(server.count("evidence").await, before);

    // Reassigned: the same file again moves them, in the same transaction.
    let out = ladder_on(
        &server,
        &[
            "framework",
            "import",
            file,
            "--prune",
            "--reassign",
            "senior_engineer=staff_engineer",
        ],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(&format!(
            "subjects of role senior_engineer: current role now staff_engineer ({holders} subjects)"
        )),
        "{said}"
    );
    assert_eq!(roles_held(&mut clients).await, 0);
    let reassigned = recommend(&mut clients).await;
    assert!(
        reassigned
            .recommendations
            .iter()
            .all(|r| r.role_id != "staff_engineer")
    );

    // A reassignment to a role the file does not have is refused by name.
    let out = ladder_on(
        &server,
        &[
            "framework",
            "import",
            file,
            "--prune",
            "--reassign",
            "staff_engineer=startup_ceo",
        ],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("reassign[0].from_role_id"), "{said}");
    assert!(said.contains("reassign[0].to_role_id"), "{said}");
}
