//! The `ladder evidence import` and `ladder assess` commands against a real server.
//! They run on a multi-threaded runtime: the CLI is a blocking child process
//! and the in-process server must keep serving while the test waits for it.

use std::fmt::Write as _;
use std::process::Command;

use crate::harness::{TestServer, ladder_bin, token};

const BAD_LINES: [usize; 5] = [3, 1500, 4000, 7777, 10001];

/// 10,000 rows after the header; the rows on `BAD_LINES` are bad in five ways.
fn csv_file() -> String {
    let mut csv = String::from(
        "subject_id,competency_id,level,source,rater_id,observed_at,confidence,summary,link,source_system,external_id\n",
    );
    for i in 0..10_000usize {
        let line = i + 2;
        let (subject, competency, level, source, observed) =
            match BAD_LINES.iter().position(|&l| l == line) {
                Some(0) => ("emp-1", "mentoring", "9", "peer", "2026-01-01T00:00:00Z"),
                Some(1) => (
                    "emp-1",
                    "mentoring",
                    "3",
                    "astrologer",
                    "2026-01-01T00:00:00Z",
                ),
                Some(2) => ("emp-1", "mentoring", "3", "peer", "yesterday"),
                Some(3) => ("emp-1", "juggling", "3", "peer", "2026-01-01T00:00:00Z"),
                Some(_) => (
                    "someone@example.com",
                    "mentoring",
                    "3",
                    "peer",
                    "2026-01-01T00:00:00Z",
                ),
                None => ("emp-1", "mentoring", "3.5", "peer", "2026-01-01T00:00:00Z"),
            };
        let subject = if subject == "emp-1" {
            format!("emp-{}", i % 50)
        } else {
            subject.to_string()
        };
        writeln!(
            csv,
            "{subject},{competency},{level},{source},r-{i},{observed},0.9,,,hris,row-{i}"
        )
        .unwrap();
    }
    csv
}

fn import(server: &TestServer, file: &std::path::Path) -> std::process::Output {
    Command::new(ladder_bin())
        .args([
            "evidence",
            "import",
            "--server",
            &server.url(),
            "--token",
            &token("tenant-a"),
        ])
        .arg(file)
        .arg("--errors")
        .arg(file.with_extension("errors.csv"))
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_csv_import_keeps_the_good_rows_reports_the_bad_and_can_be_rerun() {
    let server = TestServer::start().await;
    // The first call loads the tenant's framework.
    server
        .clients("tenant-a")
        .await
        .assessment
        .get_scoring_policy(ladder::proto::v1::GetScoringPolicyRequest {})
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evidence.csv");
    std::fs::write(&file, csv_file()).unwrap();

    // Rejected rows make the import fail, after the good rows went in.
    let out = import(&server, &file);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.count("evidence").await, 9_995);
    let errors = std::fs::read_to_string(dir.path().join("evidence.errors.csv")).unwrap();
    // In file order, not sorted here: the file must already be.
    let lines: Vec<usize> = errors
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(lines, BAD_LINES.to_vec(), "{errors}");

    let again = import(&server, &file);
    assert!(!again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("0 created, 9995 already present, 5 rejected"),
        "{said}"
    );
    assert_eq!(server.count("evidence").await, 9_995);
}

#[tokio::test(flavor = "multi_thread")]
async fn assess_prints_a_table_and_json() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    c.record_subject("emp-1", "senior_engineer").await;
    let run = |extra: &[&str]| {
        Command::new(ladder_bin())
            .args([
                "assess",
                "--subject",
                "emp-1",
                "--role",
                "staff_engineer",
                "--dry-run",
            ])
            .args(["--server", &server.url(), "--token", &token("tenant-a")])
            .args(extra)
            .output()
            .unwrap()
    };
    let table = run(&[]);
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("system_design")
            && !text.contains("READINESS_BAND")
            && text.contains("band INSUFFICIENT EVIDENCE")
            && text.contains("insufficient evidence")
            && !text.contains("InsufficientEvidence")
            && text.contains("dry run: computed, not stored"),
        "{text}"
    );
    let json = run(&["--json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["roleId"], "staff_engineer");
    assert_eq!(value["band"], "READINESS_BAND_INSUFFICIENT_EVIDENCE");
    assert_eq!(
        server.count("assessments").await,
        0,
        "--dry-run stores nothing"
    );
}

/// A mistyped competency id in a CSV row is refused with the competency it
/// most likely meant, as the framework import does; the other rows go in.
#[tokio::test(flavor = "multi_thread")]
async fn a_mistyped_competency_gets_a_did_you_mean() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evidence.csv");
    std::fs::write(
        &file,
        "subject_id,competency_id,level,source,rater_id,observed_at,confidence,summary,link,source_system,external_id\n\
         emp-1,system_desing,3,peer,r-1,2026-01-01T00:00:00Z,0.9,,,hris,row-1\n\
         emp-1,system_design,3,peer,r-1,2026-01-01T00:00:00Z,0.9,,,hris,row-2\n",
    )
    .unwrap();
    let out = import(&server, &file);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("1 created, 0 already present, 1 rejected"),
        "{said}"
    );
    assert!(
        said.contains("unknown competency \"system_desing\" (did you mean \"system_design\"?)"),
        "{said}"
    );
}
