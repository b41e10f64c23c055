//! What the client commands say and how they exit, run as the real binary
//! against a real server: one message per mistake, rejected rows by line and
//! field in file order (in a file only where `--errors` says), and output
//! that says what was stored or corrected.

use std::path::Path;
use std::process::{Command, Output};

use crate::harness::{TestServer, ladder_bin, token};

const HEADER: &str = "subject_id,competency_id,level,source,rater_id,observed_at,confidence,summary,link,source_system,external_id";

/// A server whose tenant has its framework loaded (the first call loads it).
async fn server() -> TestServer {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    c.record_subject("emp-1", "senior_engineer").await;
    server
}

fn ladder(server: &TestServer, args: &[&str]) -> Output {
    Command::new(ladder_bin())
        .args(args)
        .args(["--server", &server.url(), "--token", &token("tenant-a")])
        .output()
        .unwrap()
}

fn import(server: &TestServer, file: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["evidence", "import", file.to_str().unwrap()];
    args.extend(extra);
    ladder(server, &args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn row(subject: &str, level: &str, source: &str, observed: &str, key: &str) -> String {
    format!("{subject},mentoring,{level},{source},r-1,{observed},,,,hris,{key}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_header_mistake_is_one_message_naming_the_columns_and_the_likely_typo() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evidence.csv");
    let mut csv = "subject,competency_id,level,source,rater_id,observed,confidence,summary,link,source_system,external_id\n".to_string();
    for i in 0..50 {
        csv.push_str(&row(
            "emp-1",
            "3",
            "peer",
            "2026-01-01T00:00:00Z",
            &format!("k-{i}"),
        ));
        csv.push('\n');
    }
    std::fs::write(&file, csv).unwrap();

    let out = import(&server, &file, &[]);
    let said = stderr(&out);
    assert!(!out.status.success(), "{said}");
    assert_eq!(said.matches("ladder:").count(), 1, "printed once: {said}");
    assert!(
        said.contains(
            r#"missing required column "subject_id" (is "subject" meant to be "subject_id"?)"#
        ) && said.contains(
            r#"missing required column "observed_at" (is "observed" meant to be "observed_at"?)"#
        ) && said
            .contains("required columns:    subject_id,competency_id,level,source,observed_at")
            && said.contains("optional columns:    rater_id,confidence,summary,link"),
        "{said}"
    );
    assert!(!said.contains("line 2"), "no error per row: {said}");
    assert!(!dir.path().join("evidence.csv.errors.csv").exists());
    assert_eq!(server.count("evidence").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_column_is_a_warning_and_a_clean_import_writes_no_error_file() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evidence.csv");
    let errors = dir.path().join("evidence.csv.errors.csv");
    std::fs::write(&errors, "line,field,reason\n2,level,from an earlier run\n").unwrap();
    let csv = format!(
        "{HEADER},sumary\n{},oops\n",
        row("emp-1", "3", "peer", "2026-01-01T00:00:00Z", "k-1")
    );
    std::fs::write(&file, csv).unwrap();

    let out = import(&server, &file, &["--errors", errors.to_str().unwrap()]);
    let said = stderr(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(r#"ignoring unknown column "sumary" (did you mean "summary"?)"#),
        "{said}"
    );
    assert!(
        said.contains("1 created, 0 already present, 0 rejected"),
        "{said}"
    );
    assert!(
        !errors.exists(),
        "a clean run leaves no earlier run's errors in the --errors file"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_rows_are_listed_in_file_order_by_line_and_field_and_fail_the_import() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evidence.csv");
    let t = "2026-01-01T00:00:00Z";
    // Lines 2-9; the server refuses lines 3, 6 and 9, the parser lines 4, 5 and 8.
    let rows = [
        row("emp-1", "3", "peer", t, "k-2"),
        row("emp-1", "9", "peer", t, "k-3"),
        row("emp-1", "3", "peer", "2026-01-01 10:00:00", "k-4"),
        row("emp-1", "3", "astrologer", t, "k-5"),
        row("someone@example.com", "3", "peer", t, "k-6"),
        row("emp-1", "3", "peer", t, "k-7"),
        row("emp-1", "high", "peer", "2026-01-01", "k-8"),
        row("emp-1", "0", "peer", t, "k-9"),
    ];
    std::fs::write(&file, format!("{HEADER}\n{}\n", rows.join("\n"))).unwrap();

    // Without --errors, the first rows are printed and no file is written.
    let out = import(&server, &file, &["--batch-size", "2"]);
    let said = stderr(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("2 created, 0 already present, 6 rejected")
            && said.contains("line 3: level: must be a number in [1, 5]")
            && said.contains("line 9: level"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing written beside the input unasked"
    );

    // Batches of two: the server's refusals name batch positions, never shown.
    let errors_file = dir.path().join("rejected.csv");
    let out = import(
        &server,
        &file,
        &[
            "--batch-size",
            "2",
            "--errors",
            errors_file.to_str().unwrap(),
        ],
    );
    let said = stderr(&out);
    assert!(!out.status.success(), "{said}");
    assert_eq!(said.matches("ladder:").count(), 1, "printed once: {said}");
    assert!(
        said.contains("0 created, 2 already present, 6 rejected")
            && said.contains("are in ")
            && said.contains("rejected.csv"),
        "{said}"
    );
    assert!(
        said.contains(
            r#"line 4: observed_at: "2026-01-01 10:00:00" has no timezone: write 2026-01-01T10:00:00Z for UTC"#
        ),
        "{said}"
    );
    let errors = std::fs::read_to_string(&errors_file).unwrap();
    assert!(!errors.contains("evidence["), "{errors}");
    let listed: Vec<(usize, String)> = csv::Reader::from_reader(errors.as_bytes())
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].parse().unwrap(), r[1].to_string())
        })
        .collect();
    assert_eq!(
        listed,
        [
            (3, "level"),
            (4, "observed_at"),
            (5, "source"),
            (6, "subject_id"),
            (8, "level"),
            (8, "observed_at"),
            (9, "level"),
        ]
        .map(|(line, field)| (line, field.to_string()))
        .to_vec(),
        "{errors}"
    );
    assert_eq!(server.count("evidence").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn assess_says_whether_it_stored_and_whatif_that_it_is_hypothetical() {
    let server = server().await;
    let stored = ladder(
        &server,
        &["assess", "--subject", "emp-1", "--role", "staff_engineer"],
    );
    let text = stdout(&stored);
    assert!(stored.status.success(), "{}", stderr(&stored));
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("stored as assessment "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{text}");
    assert_eq!(server.count("assessments").await, 1);
    assert!(
        text.contains("band INSUFFICIENT EVIDENCE") && !text.contains("InsufficientEvidence"),
        "{text}"
    );

    let whatif = ladder(
        &server,
        &[
            "whatif",
            "--subject",
            "emp-1",
            "--role",
            "senior_engineer",
            "--add",
            "system_design:5:calibration",
            "--max",
            "2",
        ],
    );
    let text = stdout(&whatif);
    assert!(whatif.status.success(), "{}", stderr(&whatif));
    assert!(text.starts_with("HYPOTHETICAL: "), "{text}");
    assert!(text.contains("nothing was stored"), "{text}");
    assert_eq!(server.count("evidence").await, 0);
    assert_eq!(server.count("assessments").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn recommend_shows_at_most_max_and_draws_a_labelled_chart() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("top.svg");
    let out = ladder(
        &server,
        &[
            "recommend",
            "--subject",
            "emp-1",
            "--role",
            "senior_engineer",
            "--max",
            "2",
            "--chart",
            chart.to_str().unwrap(),
        ],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("\n2. ") && !text.contains("\n3. "), "{text}");
    assert!(
        !text.contains("Debug") && !text.contains("IndividualContributor"),
        "{text}"
    );
    let svg = std::fs::read_to_string(&chart).unwrap();
    let top_role = text
        .lines()
        .find_map(|l| l.strip_prefix("1. ")?.split(" (").next())
        .unwrap_or_else(|| panic!("{text}"));
    // Rings labelled 1-5, the role's name, the interval band, untested competencies and a legend.
    for label in [
        "\n1\n</text>",
        "\n5\n</text>",
        top_role,
        "80% interval of the estimate",
        "not yet evidenced",
        "expected level",
    ] {
        assert!(svg.contains(label), "{label} missing from the chart");
    }

    let refused = ladder(&server, &["recommend", "--subject", "emp-1", "--max", "0"]);
    assert!(!refused.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_call_is_printed_once_in_words() {
    let server = server().await;
    let out = ladder(
        &server,
        &[
            "assess",
            "--subject",
            "emp-1",
            "--role",
            "no_such_role",
            "--dry-run",
        ],
    );
    let said = stderr(&out);
    assert!(!out.status.success());
    assert_eq!(
        said.lines().filter(|l| l.starts_with("ladder:")).count(),
        1,
        "{said}"
    );
    assert!(
        !said.contains("\"level\""),
        "no JSON log line repeating it: {said}"
    );
    assert!(!said.contains("NotFound"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_field_is_printed_once_with_its_code_and_no_grpc_boilerplate() {
    let server = server().await;
    let out = ladder(
        &server,
        &[
            "whatif",
            "--subject",
            "emp-1",
            "--role",
            "senior_engineer",
            "--add",
            "system_design:9:peer",
        ],
    );
    let said = stderr(&out);
    assert!(!out.status.success(), "{said}");
    assert_eq!(
        said.trim_end(),
        "ladder: INVALID_ARGUMENT: added_evidence[0].level: must be a number in [1, 5]",
    );
    for boilerplate in ["status:", "message:", "details:", "metadata:"] {
        assert!(!said.contains(boilerplate), "{said}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn evidence_correct_applies_a_corrections_file_and_reports_the_rows_it_cannot() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evidence.csv");
    let t = "2026-01-01T00:00:00Z";
    let rows = [
        row("emp-1", "3", "peer", t, "k-1"),
        row("emp-1", "3", "peer", t, "k-2"),
        row("emp-1", "3", "peer", t, "k-3"),
    ];
    std::fs::write(&file, format!("{HEADER}\n{}\n", rows.join("\n"))).unwrap();
    assert!(import(&server, &file, &[]).status.success());
    let c = server.clients("tenant-a").await;
    let stored = |key: &'static str| {
        let mut c = c.assessment.clone();
        async move {
            c.list_evidence(ladder::proto::v1::ListEvidenceRequest {
                subject_id: "emp-1".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .evidence
            .into_iter()
            .find(|e| e.external_id == key)
            .unwrap()
        }
    };
    let k2 = stored("k-2").await;

    // Lines 2-7: by key; by id (with its etag); the server refuses line 4
    // (a level out of range) and line 6 (no such key); the parser line 5;
    // line 7's etag is stale once line 3 has corrected the same evidence.
    let corrections = dir.path().join("corrections.csv");
    std::fs::write(
        &corrections,
        format!(
            "evidence_id,source_system,external_id,etag,level,summary,source\n\
             ,hris,k-1,,4.5,,\n\
             {id},,,{etag},,wrong scale,manager\n\
             ,hris,k-3,,9,,\n\
             ,hris,k-3,,4,,astrologer\n\
             ,hris,k-404,,4,,\n\
             {id},,,{etag},2,,\n\
             {unknown},,,,4,,\n",
            id = k2.id,
            etag = k2.etag,
            unknown = uuid::Uuid::now_v7(),
        ),
    )
    .unwrap();
    let out = ladder(
        &server,
        &["evidence", "correct", corrections.to_str().unwrap()],
    );
    let said = stderr(&out);
    assert!(!out.status.success(), "{said}");
    assert_eq!(said.matches("ladder:").count(), 1, "printed once: {said}");
    assert!(said.contains("2 corrected, 5 rejected"), "{said}");
    for expected in [
        "line 4: level: must be a number in [1, 5]",
        r#"line 5: source: unknown source "astrologer""#,
        "line 6: external_id: no evidence is stored under this (source_system, external_id)",
        "line 7: etag: the evidence was changed since this etag was read",
        "line 8: evidence_id: no evidence of this id is stored",
    ] {
        assert!(said.contains(expected), "{expected} in {said}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no error file unasked"
    );
    assert_eq!(stored("k-1").await.level, 4.5);
    let k2_now = stored("k-2").await;
    assert_eq!(
        (k2_now.summary.as_str(), k2_now.source, k2_now.level),
        (
            "wrong scale",
            ladder::proto::v1::EvidenceSource::Manager as i32,
            3.0
        )
    );
    assert_eq!(stored("k-3").await.level, 3.0);

    // Importing the first file again: the corrected rows are conflicting
    // re-sends, named with the stored evidence and what differs.
    let out = import(&server, &file, &[]);
    let said = stderr(&out);
    let k1 = stored("k-1").await;
    assert!(
        said.contains("0 created, 1 already present, 2 rejected"),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "line 2: external_id: (source_system, external_id) is stored as evidence {} with a different level; to change it, use `ladder evidence correct`",
            k1.id
        )),
        "{said}"
    );

    // With --errors, every rejected row goes to that file; a wrong header
    // corrects nothing.
    let errors = dir.path().join("refused.csv");
    let out = ladder(
        &server,
        &[
            "evidence",
            "correct",
            corrections.to_str().unwrap(),
            "--errors",
            errors.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let listed = std::fs::read_to_string(&errors).unwrap();
    assert!(
        listed.starts_with("line,field,reason\n") && listed.contains("4,level,"),
        "{listed}"
    );
    std::fs::write(&corrections, "external_id,levle\nk-1,2\n").unwrap();
    let out = ladder(
        &server,
        &["evidence", "correct", corrections.to_str().unwrap()],
    );
    let said = stderr(&out);
    assert!(
        said.contains(r#"unknown column "levle" (did you mean "level"?)"#)
            && said.contains("nothing was corrected"),
        "{said}"
    );
    assert_eq!(stored("k-1").await.level, 4.5);
}

#[tokio::test(flavor = "multi_thread")]
async fn text_logs_to_a_pipe_have_no_colour_codes() {
    let server = TestServer::start().await;
    let out = Command::new(ladder_bin())
        .args(["migrate", "--log-format", "text", "--database-url"])
        .arg(server.database_url())
        .output()
        .unwrap();
    let said = stderr(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("migrations applied"), "{said}");
    assert!(!said.contains('\u{1b}'), "{said:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn subject_set_role_sets_one_subject_or_a_whole_file() {
    let server = server().await;
    let out = ladder(
        &server,
        &[
            "subject",
            "set-role",
            "--subject",
            "emp-1",
            "--role",
            "staff_engineer",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("emp-1 now holds staff_engineer"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("subjects.csv");
    std::fs::write(
        &file,
        "subject_id,current_role_id,team\nemp-2,engineering_manager,a\nemp-3,senior_engineer,b\n",
    )
    .unwrap();
    let out = ladder(
        &server,
        &["subject", "set-role", "--file", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("set the current role of 2 subject(s)"));
    let mut c = server.clients("tenant-a").await;
    let emp2 = c
        .assessment
        .get_subject(ladder::proto::v1::GetSubjectRequest {
            subject_id: "emp-2".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap();
    assert_eq!(emp2.current_role_id, "engineering_manager");

    std::fs::write(&file, "subject_id,current_role_id\nemp-4,no_such_role\n").unwrap();
    let out = ladder(
        &server,
        &["subject", "set-role", "--file", file.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
}

/// Output cut short (`ladder framework export | head`) ends the command as
/// a closed pipe ends any Unix command: quietly, by SIGPIPE or with status 0,
/// never with a panic (status 101).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_cut_short_by_a_closed_pipe_ends_quietly() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;

    let test_server = TestServer::start().await;
    let server = crate::harness::LoggedServer::start(&test_server.app_database_url());
    let url = server.url();
    let (status, stderr) = tokio::task::spawn_blocking(move || {
        // The built-in framework's YAML is larger than a pipe holds.
        let mut child = Command::new(ladder_bin())
            .args(["framework", "export", "--server", &url])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut head = [0u8; 100];
        child.stdout.take().unwrap().read_exact(&mut head).unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        status.code() == Some(0) || status.signal() == Some(libc::SIGPIPE),
        "{status:?}: {stderr}"
    );
    server.stop().await;
}
