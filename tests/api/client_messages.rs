//! What the client commands say and how they exit, run as the real binary
//! against a real server: one message per mistake, rejected rows by line and
//! field in file order, and output that says what was stored.

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

    let out = import(&server, &file, &[]);
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
    assert!(!errors.exists(), "a clean run leaves no error file behind");
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

    // Batches of two: the server's refusals name batch positions, never shown.
    let out = import(&server, &file, &["--batch-size", "2"]);
    let said = stderr(&out);
    assert!(!out.status.success(), "{said}");
    assert_eq!(said.matches("ladder:").count(), 1, "printed once: {said}");
    assert!(
        said.contains("2 created, 0 already present, 6 rejected"),
        "{said}"
    );
    assert!(
        said.contains(
            r#"line 4: observed_at: "2026-01-01 10:00:00" has no timezone: write 2026-01-01T10:00:00Z for UTC"#
        ),
        "{said}"
    );
    let errors = std::fs::read_to_string(dir.path().join("evidence.csv.errors.csv")).unwrap();
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
