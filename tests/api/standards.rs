//! Frameworks and learning records in open standards over the API and the
//! CLI: `FrameworkService` (Ladder's YAML and CASE 1.1) and `XapiService`.

use std::path::Path;
use std::process::{Command, Output};

use ladder::proto::v1 as pb;
use ladder::proto::v1::framework_service_client::FrameworkServiceClient;
use ladder::proto::v1::xapi_service_client::XapiServiceClient;
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{Authed, Bearer, TestServer, ladder_bin, token};

type Frameworks = FrameworkServiceClient<Authed>;
type Statements = XapiServiceClient<Authed>;

const CASE: i32 = pb::FrameworkFormat::Case as i32;
const YAML: i32 = pb::FrameworkFormat::Yaml as i32;

async fn clients(server: &TestServer, tenant: &str) -> (Frameworks, Statements) {
    let channel = server.channel().await;
    let bearer = Bearer(Some(format!("Bearer {}", token(tenant)).parse().unwrap()));
    (
        FrameworkServiceClient::with_interceptor(channel.clone(), bearer.clone()),
        XapiServiceClient::with_interceptor(channel, bearer),
    )
}

async fn export(
    client: &mut Frameworks,
    format: i32,
    last_change_time: Option<prost_types::Timestamp>,
) -> String {
    let response = client
        .export_framework(pb::ExportFrameworkRequest {
            format,
            last_change_time,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.format, format);
    String::from_utf8(response.document).unwrap()
}

async fn import(
    client: &mut Frameworks,
    format: i32,
    document: &[u8],
    validate_only: bool,
) -> Result<pb::ImportFrameworkResponse, tonic::Status> {
    client
        .import_framework(pb::ImportFrameworkRequest {
            format,
            document: document.to_vec(),
            validate_only,
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Rows of the framework tables and of evidence, of one tenant.
async fn rows(server: &TestServer, tenant: &str) -> Vec<i64> {
    let mut all = Vec::new();
    for table in [
        "tenants",
        "tracks",
        "competencies",
        "roles",
        "role_transitions",
        "rubric_versions",
        "rubric_competencies",
        "evidence",
    ] {
        let query = format!("SELECT count(*) FROM {table} WHERE tenant_id = $1");
        let n: i64 = sqlx::query_scalar(&query)
            .bind(tenant)
            .fetch_one(&server.pool)
            .await
            .unwrap();
        all.push(n);
    }
    all
}

fn timestamp_of(text: &str) -> prost_types::Timestamp {
    let t = chrono::DateTime::parse_from_rfc3339(text).unwrap();
    crate::harness::timestamp(t.with_timezone(&chrono::Utc))
}

#[tokio::test]
async fn the_builtin_framework_round_trips_through_case_into_an_empty_tenant() {
    let server = TestServer::start().await;
    let (mut alpha, _) = clients(&server, "alpha").await;
    let first = export(&mut alpha, CASE, None).await;
    let package: Value = serde_json::from_str(&first).unwrap();
    let last_change = package["CFDocument"]["lastChangeDateTime"]
        .as_str()
        .unwrap()
        .to_string();

    // Into a tenant that has never been used: it starts from the package
    // alone, not from the built-in framework with the package on top.
    let (mut beta, _) = clients(&server, "beta").await;
    let report = import(&mut beta, CASE, first.as_bytes(), false)
        .await
        .unwrap();
    assert_eq!(report.notes, [], "Ladder's own package maps without notes");
    assert!(report.changed.is_empty() && report.unchanged.is_empty());
    assert!(
        report
            .created
            .contains(&"competency system_design".to_string())
    );
    assert!(
        report
            .created
            .contains(&"rubric staff_engineer version 1 (published)".to_string())
    );
    assert_eq!(
        rows(&server, "beta").await[..7],
        rows(&server, "alpha").await[..7]
    );

    // The same package back, byte for byte, given the same change time; and
    // the same YAML, which carries no time.
    let again = export(&mut beta, CASE, Some(timestamp_of(&last_change))).await;
    assert_eq!(again, first);
    assert_eq!(
        export(&mut beta, YAML, None).await,
        export(&mut alpha, YAML, None).await
    );
    // Importing it again changes nothing.
    let before = rows(&server, "beta").await;
    let report = import(&mut beta, CASE, first.as_bytes(), false)
        .await
        .unwrap();
    assert!(report.created.is_empty() && report.changed.is_empty());
    assert_eq!(rows(&server, "beta").await, before);
}

const THIRD_PARTY: &[u8] = include_bytes!("../../examples/framework.case.json");

#[tokio::test]
async fn a_third_party_case_package_imports_what_maps_and_reports_the_rest() {
    let server = TestServer::start().await;
    let (mut client, _) = clients(&server, "northwind").await;
    let report = import(&mut client, CASE, THIRD_PARTY, false).await.unwrap();
    assert_eq!(
        report.created,
        [
            "competency statistical_reasoning",
            "competency data_visualisation",
            "competency designs_data_models_that_keep_meaning_stable_as",
            "competency pipeline_reliability",
            "competency stakeholder_communication",
        ]
    );
    let kinds = |kind: pb::ImportNoteKind| {
        report
            .notes
            .iter()
            .filter(|n| n.kind == kind as i32)
            .count()
    };
    assert!(kinds(pb::ImportNoteKind::Skipped) > 0, "{:?}", report.notes);
    assert!(
        kinds(pb::ImportNoteKind::Adjusted) > 0,
        "{:?}",
        report.notes
    );
    // Each note names an object of the package and says why.
    let text = std::str::from_utf8(THIRD_PARTY).unwrap();
    for note in &report.notes {
        assert!(
            text.contains(&format!("\"{}\"", note.identifier)),
            "{note:?}"
        );
        assert!(!note.reason.is_empty());
    }
    assert_eq!(
        rows(&server, "northwind").await,
        [1, 0, 5, 0, 0, 0, 0, 0],
        "the competencies land, and nothing else"
    );
    let yaml = export(&mut client, YAML, None).await;
    assert!(yaml.contains("id: statistical_reasoning"), "{yaml}");
}

#[tokio::test]
async fn a_dry_run_answers_what_an_import_would_do_and_writes_nothing() {
    let server = TestServer::start().await;
    let (mut fresh, _) = clients(&server, "fresh").await;
    let report = import(&mut fresh, CASE, THIRD_PARTY, true).await.unwrap();
    assert_eq!(report.created.len(), 5);
    assert!(!report.notes.is_empty());
    assert_eq!(rows(&server, "fresh").await, [0; 8], "not even the tenant");

    // On a tenant with a framework: the report names the change, the
    // database keeps what it had.
    let (mut used, _) = clients(&server, "used").await;
    let yaml = export(&mut used, YAML, None).await;
    let before = rows(&server, "used").await;
    let changed = yaml.replacen("weight: 3.0", "weight: 2.75", 1);
    let report = import(&mut used, YAML, changed.as_bytes(), true)
        .await
        .unwrap();
    assert_eq!(report.created.len(), 1, "{:?}", report.created);
    assert!(report.created[0].contains("supersedes version 1"));
    assert_eq!(rows(&server, "used").await, before);
    assert_eq!(export(&mut used, YAML, None).await, yaml);
}

#[tokio::test]
async fn a_bad_document_is_refused_with_every_problem_at_its_path() {
    let server = TestServer::start().await;
    let (mut client, _) = clients(&server, "people-ops").await;
    let yaml = export(&mut client, YAML, None).await;
    let before = rows(&server, "people-ops").await;

    let typo = yaml.replacen("competency: system_design", "competency: system_desing", 1);
    let status = import(&mut client, YAML, typo.as_bytes(), false)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status.get_details_bad_request().unwrap().field_violations;
    let typo_line = typo
        .lines()
        .position(|l| l.contains("system_desing"))
        .unwrap()
        + 1;
    let found = violations
        .iter()
        .find(|v| v.description.contains("system_desing"))
        .unwrap_or_else(|| panic!("{violations:?}"));
    assert!(
        found.field.starts_with("document.roles[") && found.field.ends_with("].competency"),
        "{found:?}"
    );
    assert!(
        found
            .description
            .contains(&format!("line {typo_line}, column")),
        "{found:?}"
    );
    assert_eq!(rows(&server, "people-ops").await, before);

    // A package that is not JSON, and a request without a format.
    let status = import(&mut client, CASE, yaml.as_bytes(), false)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(crate::harness::bad_fields(&status), ["document"]);
    let status = import(&mut client, 0, yaml.as_bytes(), false)
        .await
        .unwrap_err();
    assert_eq!(crate::harness::bad_fields(&status), ["format"]);
    assert_eq!(rows(&server, "people-ops").await, before);
}

fn account(name: &str) -> Value {
    json!({"objectType": "Agent", "account": {"homePage": "https://hris.example.com", "name": name}})
}

fn statement(id: &str, actor: Value, object: &str, result: Option<Value>) -> Value {
    let mut s = json!({
        "id": id,
        "actor": actor,
        "verb": {"id": "http://adlnet.gov/expapi/verbs/scored", "display": {"en-US": "scored"}},
        "object": {"objectType": "Activity", "id": object},
        "timestamp": "2026-03-02T10:00:00Z",
    });
    if let Some(result) = result {
        s["result"] = result;
    }
    s
}

fn scaled(value: f64) -> Option<Value> {
    Some(json!({"score": {"scaled": value}}))
}

fn void(id: &str, voided: &str) -> Value {
    json!({
        "id": id,
        "actor": account("lrs-admin"),
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": voided},
    })
}

const EARLIER: &str = "0b7d3c1e-0000-4000-8000-000000000001";

/// Valid statements, a repeat, `mbox`, an unknown competency, no score, and
/// a void of `EARLIER`, as JSON Lines.
fn statements_file() -> String {
    let lines = [
        statement(
            "0b7d3c1e-0000-4000-8000-000000000010",
            account("emp-1"),
            "mentoring",
            scaled(0.75),
        ),
        statement(
            "0b7d3c1e-0000-4000-8000-000000000011",
            account("emp-1"),
            "urn:uuid:44799acf-07e3-5fa4-b055-ab508e69226b",
            Some(json!({"score": {"raw": 18, "min": 0, "max": 24}})),
        ),
        statement(
            "0b7d3c1e-0000-4000-8000-000000000010",
            account("emp-1"),
            "mentoring",
            scaled(0.75),
        ),
        statement(
            "0b7d3c1e-0000-4000-8000-000000000012",
            json!({"objectType": "Agent", "mbox": "mailto:someone@example.com"}),
            "mentoring",
            scaled(0.5),
        ),
        statement(
            "0b7d3c1e-0000-4000-8000-000000000013",
            account("emp-2"),
            "https://example.com/activities/juggling",
            scaled(0.5),
        ),
        statement(
            "0b7d3c1e-0000-4000-8000-000000000014",
            account("emp-2"),
            "mentoring",
            None,
        ),
        void("0b7d3c1e-0000-4000-8000-000000000015", EARLIER),
        statement(
            "0b7d3c1e-0000-4000-8000-000000000016",
            account("emp-2"),
            "system_design",
            scaled(1.0),
        ),
    ];
    lines.iter().map(|l| format!("{l}\n")).collect()
}

async fn send(client: &mut Statements, statements: &str) -> pb::ImportStatementsResponse {
    client
        .import_statements(pb::ImportStatementsRequest {
            statements: statements.as_bytes().to_vec(),
            account_home_page: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn outcomes(response: &pb::ImportStatementsResponse) -> Vec<(i32, pb::StatementOutcome)> {
    response
        .results
        .iter()
        .map(|r| (r.index, pb::StatementOutcome::try_from(r.outcome).unwrap()))
        .collect()
}

#[tokio::test]
async fn xapi_statements_land_once_and_each_bad_one_is_reported() {
    use pb::StatementOutcome::{Duplicate, NothingToVoid, Recorded, Rejected, Voided};
    let server = TestServer::start().await;
    let (_, mut client) = clients(&server, "lms").await;
    let earlier = statement(EARLIER, account("emp-3"), "mentoring", scaled(0.5));
    let first = send(&mut client, &earlier.to_string()).await;
    assert_eq!(outcomes(&first), [(0, Recorded)]);
    let evidence = |server: &TestServer| {
        let pool = server.pool.clone();
        async move {
            sqlx::query_as::<_, (String, String, f64)>(
                "SELECT external_id, competency_id, level FROM evidence \
                 WHERE tenant_id = 'lms' AND source_system = 'xapi' ORDER BY external_id",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(evidence(&server).await.len(), 1);

    let file = statements_file();
    let response = send(&mut client, &file).await;
    assert_eq!(
        outcomes(&response),
        [
            (0, Recorded),
            (1, Recorded),
            (2, Rejected),
            (3, Rejected),
            (4, Rejected),
            (5, Rejected),
            (6, Voided),
            (7, Recorded),
        ]
    );
    let reason = |i: usize| response.results[i].reason.clone();
    assert!(reason(2).contains("repeats statement #0"), "{}", reason(2));
    assert!(reason(3).contains("mbox"), "{}", reason(3));
    assert!(!reason(3).contains("someone@example.com"), "{}", reason(3));
    assert!(reason(4).contains("names no competency"), "{}", reason(4));
    assert!(reason(5).contains("score"), "{}", reason(5));
    assert_eq!(
        response.results[3].statement_id,
        "0b7d3c1e-0000-4000-8000-000000000012"
    );
    assert_eq!(
        (
            response.recorded_count,
            response.duplicate_count,
            response.voided_count,
            response.rejected_count
        ),
        (3, 0, 1, 4)
    );
    // The valid ones landed once, rescaled to 1-5; the voided one is gone.
    // (44799acf-… is Ladder's CASE identifier of technical_depth.)
    let landed = evidence(&server).await;
    assert_eq!(
        landed,
        [
            (
                "0b7d3c1e-0000-4000-8000-000000000010".into(),
                "mentoring".into(),
                4.0
            ),
            (
                "0b7d3c1e-0000-4000-8000-000000000011".into(),
                "technical_depth".into(),
                4.0
            ),
            (
                "0b7d3c1e-0000-4000-8000-000000000016".into(),
                "system_design".into(),
                5.0
            ),
        ]
    );

    // Sending the file again changes nothing.
    let again = send(&mut client, &file).await;
    let expected_again: Vec<_> = outcomes(&response)
        .into_iter()
        .map(|(i, o)| match o {
            Recorded => (i, Duplicate),
            Voided => (i, NothingToVoid),
            other => (i, other),
        })
        .collect();
    assert_eq!(outcomes(&again), expected_again);
    assert_eq!(
        again.results[0].evidence_id,
        response.results[0].evidence_id
    );
    assert_eq!(evidence(&server).await, landed);

    // A known id with other content is refused for that statement alone.
    let changed = statement(
        "0b7d3c1e-0000-4000-8000-000000000010",
        account("emp-1"),
        "mentoring",
        scaled(0.25),
    );
    let new = statement(
        "0b7d3c1e-0000-4000-8000-000000000017",
        account("emp-1"),
        "communication",
        scaled(0.5),
    );
    let response = send(&mut client, &json!([changed, new]).to_string()).await;
    assert_eq!(outcomes(&response), [(0, Rejected), (1, Recorded)]);
    assert!(
        response.results[0].reason.contains("different content"),
        "{}",
        response.results[0].reason
    );
    assert_eq!(evidence(&server).await.len(), 4);
    assert_eq!(evidence(&server).await[0], landed[0]);
}

#[tokio::test]
async fn unreadable_or_oversized_statements_are_refused_whole() {
    let server = TestServer::start().await;
    let (_, mut client) = clients(&server, "lms").await;
    for (statements, said) in [("", "is required"), ("[{\"id\": ", "not a JSON array")] {
        let status = client
            .import_statements(pb::ImportStatementsRequest {
                statements: statements.as_bytes().to_vec(),
                account_home_page: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(crate::harness::bad_fields(&status), ["statements"]);
        assert!(status.message().contains(said), "{}", status.message());
    }
    let many: Vec<Value> = (0..1001)
        .map(|i| {
            statement(
                &format!("0b7d3c1e-0000-4000-8000-{i:012}"),
                account("emp-1"),
                "mentoring",
                scaled(0.5),
            )
        })
        .collect();
    let status = client
        .import_statements(pb::ImportStatementsRequest {
            statements: serde_json::to_vec(&many).unwrap(),
            account_home_page: String::new(),
        })
        .await
        .unwrap_err();
    assert!(
        status.message().contains("at most 1000"),
        "{}",
        status.message()
    );
    assert_eq!(server.count("evidence").await, 0);
}

fn ladder(server: &TestServer, tenant: &str, args: &[&str]) -> Output {
    Command::new(ladder_bin())
        .args(args)
        .args(["--server", &server.url(), "--token", &token(tenant)])
        .args(["--log-format", "text"])
        .env_remove("LADDER_TENANT")
        .output()
        .unwrap()
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A file of `examples/`.
fn sample(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A new user's session: export the framework as CASE from a running
/// server, import it elsewhere (dry run first), then send xAPI statements.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_imports_and_exports_frameworks_and_statements_over_the_api() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("framework.json");
    succeeded(&ladder(
        &server,
        "acme",
        &["framework", "export", "--output", path(&package)],
    ));
    let text = std::fs::read_to_string(&package).unwrap();
    assert!(text.contains("\"CFDocument\""), "a .json output is CASE");

    let dry = succeeded(&ladder(
        &server,
        "globex",
        &["framework", "import", path(&package), "--dry-run"],
    ));
    assert!(dry.starts_with("dry run: nothing was written"), "{dry}");
    assert!(dry.contains("created   competency system_design"), "{dry}");
    assert_eq!(rows(&server, "globex").await, [0; 8]);
    let applied = succeeded(&ladder(
        &server,
        "globex",
        &["framework", "import", path(&package)],
    ));
    assert!(applied.contains("0 changed, 0 unchanged"), "{applied}");
    let yaml = succeeded(&ladder(&server, "globex", &["framework", "export"]));
    assert!(yaml.starts_with("# Ladder career framework"), "{yaml}");
    assert_eq!(
        yaml,
        succeeded(&ladder(
            &server,
            "acme",
            &["framework", "export", "--format", "yaml"]
        ))
    );

    // A third-party package: the notes are listed before the report.
    let third = succeeded(&ladder(
        &server,
        "initech",
        &[
            "framework",
            "import",
            "--format",
            "case",
            &sample("framework.case.json"),
        ],
    ));
    assert!(third.contains("skipped   "), "{third}");
    assert!(third.contains("were skipped or adjusted"), "{third}");

    // A mistake in a YAML file reads as in the direct mode: path, line, column.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        yaml.replacen("competency: system_design", "competency: system_desing", 1),
    )
    .unwrap();
    let out = ladder(&server, "globex", &["framework", "import", path(&bad)]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("nothing was imported"), "{said}");
    assert!(said.contains("].competency: (role "), "{said}");
    assert!(said.contains(", column "), "{said}");
    assert!(said.contains("did you mean \"system_design\""), "{said}");

    // xAPI: the sample file maps entirely (its void finds nothing to void).
    let out = ladder(
        &server,
        "globex",
        &[
            "evidence",
            "import",
            "--format",
            "xapi",
            &sample("statements.xapi.json"),
        ],
    );
    let printed = succeeded(&out);
    assert!(
        printed.contains("statement #0 5e0f7c2a-1d3b-4c8e-9a61-7b2d4e8f0a11: recorded as evidence"),
        "{printed}"
    );
    assert!(printed.contains("nothing to void"), "{printed}");
    assert_eq!(rows(&server, "globex").await[7], 3);

    // Rejected statements are listed with their reasons, and fail the command.
    let file = dir.path().join("statements.jsonl");
    std::fs::write(&file, statements_file()).unwrap();
    let out = ladder(
        &server,
        "globex",
        &["evidence", "import", "--format", "xapi", path(&file)],
    );
    assert!(!out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("statement #3 0b7d3c1e-0000-4000-8000-000000000012: rejected: actor is identified by mbox"), "{printed}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("3 recorded, 0 already recorded, 0 voided, 1 nothing to void, 4 rejected"),
        "{said}"
    );
    assert_eq!(rows(&server, "globex").await[7], 6);
}

/// A CCSS-like package written the way state CASE servers publish theirs:
/// a domain grouping three standards and one standard on its own, each with
/// an identifier, a URI and a human coding scheme; two names have blanks at
/// an end.
const CCSS: &[u8] = include_bytes!("../data/ccss_math_grade6.case.json");

fn ccss() -> Value {
    serde_json::from_slice(CCSS).unwrap()
}

/// The package with one more `isChildOf` link from `child` to `parent`
/// (indexes into `CFItems`).
fn with_child_link(mut package: Value, child: usize, parent: usize) -> Value {
    let end = |i: usize| {
        let item = &package["CFItems"][i];
        json!({"identifier": item["identifier"], "uri": item["uri"]})
    };
    let (origin, destination) = (end(child), end(parent));
    let links = package["CFAssociations"].as_array_mut().unwrap();
    let n = links.len();
    links.push(json!({
        "identifier": format!("9d0a7e10-0000-4000-8000-{n:012}"),
        "associationType": "isChildOf",
        "originNodeURI": origin,
        "destinationNodeURI": destination,
    }));
    package
}

/// What the API shows of a tenant's framework: its competencies and every
/// rubric version.
async fn framework_state(
    server: &TestServer,
    tenant: &str,
) -> (Vec<pb::Competency>, Vec<pb::Rubric>) {
    let mut clients = server.clients(tenant).await;
    let competencies = clients
        .rubric
        .list_competencies(pb::ListCompetenciesRequest {
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(competencies.next_page_token.is_empty());
    let rubrics = clients
        .rubric
        .list_rubrics(pb::ListRubricsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rubrics.next_page_token.is_empty());
    (competencies.competencies, rubrics.rubrics)
}

fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect()
}

#[tokio::test]
async fn a_case_package_with_a_cycle_or_a_self_parent_is_refused_naming_its_items() {
    let server = TestServer::start().await;
    let (mut client, _) = clients(&server, "k12").await;
    import(&mut client, CASE, CCSS, false).await.unwrap();
    let before = (
        framework_state(&server, "k12").await,
        rows(&server, "k12").await,
    );
    let code = |i: usize| {
        ccss()["CFItems"][i]["humanCodingScheme"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // Two standards each the child of the other, three in a ring, and the
    // domain its own child.
    let two = with_child_link(with_child_link(ccss(), 1, 2), 2, 1);
    let three = with_child_link(with_child_link(with_child_link(ccss(), 1, 2), 2, 3), 3, 1);
    let own = with_child_link(ccss(), 0, 0);
    for (package, items) in [(two, vec![1, 2]), (three, vec![1, 2, 3]), (own, vec![0])] {
        for validate_only in [false, true] {
            let bytes = serde_json::to_vec(&package).unwrap();
            let status = import(&mut client, CASE, &bytes, validate_only)
                .await
                .unwrap_err();
            let found = violations(&status);
            if items.len() == 1 {
                // The link that makes the item its own parent.
                assert_eq!(found.len(), 1, "{found:#?}");
                let (field, description) = &found[0];
                assert!(field.starts_with("document.CFAssociations["), "{field}");
                assert!(description.contains("its own parent"), "{description}");
                assert!(description.contains(&code(0)), "{description}");
                continue;
            }
            // Each item of the cycle, at its place in the package, by its
            // identifier and its human coding scheme.
            assert_eq!(found.len(), items.len(), "{found:#?}");
            for (&i, (field, description)) in items.iter().zip(&found) {
                assert_eq!(field, &format!("document.CFItems[{i}]"));
                let identifier = ccss()["CFItems"][i]["identifier"]
                    .as_str()
                    .unwrap()
                    .to_string();
                assert!(description.contains(&identifier), "{description}");
                assert!(description.contains(&code(i)), "{description}");
                assert!(description.contains("cycle"), "{description}");
                for &j in &items {
                    assert!(description.contains(&code(j)), "{description}");
                }
            }
        }
    }
    // Both at once: every problem in one answer.
    let both = with_child_link(with_child_link(with_child_link(ccss(), 1, 2), 2, 1), 4, 4);
    let status = import(
        &mut client,
        CASE,
        &serde_json::to_vec(&both).unwrap(),
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(violations(&status).len(), 3, "{:#?}", violations(&status));
    assert_eq!(
        (
            framework_state(&server, "k12").await,
            rows(&server, "k12").await
        ),
        before,
        "nothing changed"
    );
}

/// The `index`th criterion of the rubric of `role` in a package Ladder wrote.
fn criterion<'a>(package: &'a mut Value, role: &str, index: usize) -> &'a mut Value {
    let rubric = package["CFRubrics"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["extensions"]["ladder:role"] == role)
        .unwrap();
    &mut rubric["CFRubricCriteria"][index]
}

#[tokio::test]
async fn one_bad_value_refuses_the_whole_case_package() {
    let server = TestServer::start().await;
    let (mut client, _) = clients(&server, "acme").await;
    let exported: Value = serde_json::from_str(&export(&mut client, CASE, None).await).unwrap();
    let before = (
        framework_state(&server, "acme").await,
        rows(&server, "acme").await,
    );
    // A change that alone would publish a new version of the rubric, so
    // that a partial import would show.
    let mut changed = exported.clone();
    let weight_of_1 = criterion(&mut changed, "senior_engineer", 1)["weight"]
        .as_f64()
        .unwrap();
    criterion(&mut changed, "senior_engineer", 1)["weight"] = json!(weight_of_1 + 0.25);

    let mut level = changed.clone();
    criterion(&mut level, "senior_engineer", 0)["extensions"]["ladder:expectedLevel"] = json!(0);
    let mut weight = changed.clone();
    criterion(&mut weight, "senior_engineer", 2)["weight"] = json!(-1);
    let mut both = level.clone();
    criterion(&mut both, "senior_engineer", 2)["weight"] = json!(-1);
    let at = |k: usize, what: &str| {
        let rubric = exported["CFRubrics"]
            .as_array()
            .unwrap()
            .iter()
            .position(|r| r["extensions"]["ladder:role"] == "senior_engineer")
            .unwrap();
        format!("document.CFRubrics[{rubric}].CFRubricCriteria[{k}].{what}")
    };
    let named = |k: usize| {
        let c = &exported["CFRubrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["extensions"]["ladder:role"] == "senior_engineer")
            .unwrap()["CFRubricCriteria"][k];
        let item = exported["CFItems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["identifier"] == c["CFItemURI"]["identifier"])
            .unwrap();
        // Ladder writes a competency's id as its human coding scheme.
        (
            c["identifier"].as_str().unwrap().to_string(),
            item["humanCodingScheme"].as_str().unwrap().to_string(),
        )
    };
    for (package, expected) in [
        (level, vec![(at(0, "extensions.ladder:expectedLevel"), 0)]),
        (weight, vec![(at(2, "weight"), 2)]),
        (
            both,
            vec![
                (at(0, "extensions.ladder:expectedLevel"), 0),
                (at(2, "weight"), 2),
            ],
        ),
    ] {
        let status = import(
            &mut client,
            CASE,
            &serde_json::to_vec(&package).unwrap(),
            false,
        )
        .await
        .unwrap_err();
        let found = violations(&status);
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        for ((field, description), (expected_field, k)) in found.iter().zip(&expected) {
            assert_eq!(field, expected_field);
            let (identifier, competency) = named(*k);
            assert!(description.contains(&identifier), "{description}");
            assert!(description.contains(&competency), "{description}");
        }
        assert_eq!(
            (
                framework_state(&server, "acme").await,
                rows(&server, "acme").await
            ),
            before,
            "nothing changed"
        );
    }
    // The same change without the bad value is imported.
    let report = import(
        &mut client,
        CASE,
        &serde_json::to_vec(&changed).unwrap(),
        false,
    )
    .await
    .unwrap();
    assert!(
        report.created.iter().any(|c| c.contains("senior_engineer")),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_third_party_packages_identifiers_survive_import_export_xapi_and_renames() {
    let server = TestServer::start().await;
    let (mut client, mut statements) = clients(&server, "k12").await;
    let report = import(&mut client, CASE, CCSS, false).await.unwrap();
    assert_eq!(
        report.created,
        [
            "competency ratio_language",
            "competency unit_rates",
            "competency ratio_and_rate_reasoning",
            "competency dividing_fractions",
        ]
    );
    // Names are trimmed.
    let (competencies, _) = framework_state(&server, "k12").await;
    let mut names: Vec<&str> = competencies.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "Dividing fractions",
            "Ratio and rate reasoning",
            "Ratio language",
            "Unit rates"
        ]
    );

    // The API shows each competency's CASE item.
    let source = ccss();
    let by_code = |code: &str| {
        source["CFItems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["humanCodingScheme"] == code)
            .unwrap()
            .clone()
    };
    for c in &competencies {
        let item = by_code(&c.case_human_coding_scheme);
        assert_eq!(c.case_identifier, item["identifier"].as_str().unwrap());
        assert_eq!(c.case_uri, item["uri"].as_str().unwrap());
    }
    let unit_rates = server
        .clients("k12")
        .await
        .rubric
        .get_competency(pb::GetCompetencyRequest {
            competency_id: "unit_rates".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .competency
        .unwrap();
    assert_eq!(
        unit_rates.case_human_coding_scheme,
        "CCSS.Math.Content.6.RP.A.2"
    );
    // An edit in Ladder keeps the item.
    let updated = server
        .clients("k12")
        .await
        .rubric
        .update_competency(pb::UpdateCompetencyRequest {
            competency: Some(pb::Competency {
                id: "unit_rates".into(),
                description: "Unit rates, as our teachers say it.".into(),
                etag: unit_rates.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["description".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .competency
        .unwrap();
    assert_eq!(
        (
            &updated.case_identifier,
            &updated.case_uri,
            &updated.case_human_coding_scheme
        ),
        (
            &unit_rates.case_identifier,
            &unit_rates.case_uri,
            &unit_rates.case_human_coding_scheme
        )
    );

    // Each standard's identifier, URI and human coding scheme come back as
    // they went in.
    let exported: Value = serde_json::from_str(&export(&mut client, CASE, None).await).unwrap();
    let exported_items = exported["CFItems"].as_array().unwrap();
    let keys = |item: &Value| {
        (
            item["identifier"].clone(),
            item["uri"].clone(),
            item["humanCodingScheme"].clone(),
        )
    };
    for standard in &source["CFItems"].as_array().unwrap()[1..] {
        let found = exported_items
            .iter()
            .find(|i| i["identifier"] == standard["identifier"])
            .unwrap_or_else(|| panic!("{} not exported", standard["identifier"]));
        assert_eq!(keys(found), keys(standard));
        assert_eq!(found["CFItemType"], "Competency");
    }
    // The export imports back as the same competencies, and a second export
    // is the same bytes.
    let again = serde_json::to_vec(&exported).unwrap();
    let report = import(&mut client, CASE, &again, false).await.unwrap();
    assert!(report.created.is_empty(), "{report:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&export(&mut client, CASE, None).await).unwrap(),
        exported
    );

    // xAPI statements naming a standard by its URI or its identifier count
    // for its competency.
    let uri = source["CFItems"][3]["uri"].as_str().unwrap();
    let identifier = source["CFItems"][2]["identifier"].as_str().unwrap();
    let urn = format!(
        "urn:uuid:{}",
        source["CFItems"][1]["identifier"].as_str().unwrap()
    );
    let lines = [
        statement(
            "0b7d3c1e-0000-4000-8000-0000000000c1",
            account("pupil-1"),
            uri,
            scaled(0.75),
        ),
        statement(
            "0b7d3c1e-0000-4000-8000-0000000000c2",
            account("pupil-1"),
            identifier,
            scaled(0.5),
        ),
        statement(
            "0b7d3c1e-0000-4000-8000-0000000000c3",
            account("pupil-1"),
            &urn,
            scaled(0.25),
        ),
    ];
    let file: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let response = send(&mut statements, &file).await;
    assert_eq!(
        outcomes(&response),
        [
            (0, pb::StatementOutcome::Recorded),
            (1, pb::StatementOutcome::Recorded),
            (2, pb::StatementOutcome::Recorded)
        ],
        "{response:?}"
    );
    let recorded: Vec<String> = sqlx::query_scalar(
        "SELECT competency_id FROM evidence WHERE tenant_id = 'k12' ORDER BY external_id",
    )
    .fetch_all(&server.pool)
    .await
    .unwrap();
    assert_eq!(
        recorded,
        ["ratio_and_rate_reasoning", "unit_rates", "ratio_language"]
    );

    // Upstream renames a standard: the same identifier with another title
    // updates its competency instead of making a new one.
    let mut renamed = ccss();
    renamed["CFItems"][2]["abbreviatedStatement"] = json!("Unit rates and rate language");
    let report = import(
        &mut client,
        CASE,
        &serde_json::to_vec(&renamed).unwrap(),
        false,
    )
    .await
    .unwrap();
    assert!(report.created.is_empty(), "{report:?}");
    assert!(
        report
            .changed
            .iter()
            .any(|c| c.starts_with("competency unit_rates")),
        "{report:?}"
    );
    let (competencies, _) = framework_state(&server, "k12").await;
    assert_eq!(competencies.len(), 4);
    let unit_rates = competencies.iter().find(|c| c.id == "unit_rates").unwrap();
    assert_eq!(unit_rates.name, "Unit rates and rate language");
    assert_eq!(
        unit_rates.case_identifier,
        renamed["CFItems"][2]["identifier"].as_str().unwrap()
    );
    let exported: Value = serde_json::from_str(&export(&mut client, CASE, None).await).unwrap();
    let item = exported["CFItems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["identifier"] == renamed["CFItems"][2]["identifier"])
        .unwrap();
    assert_eq!(item["abbreviatedStatement"], "Unit rates and rate language");
    assert_eq!(keys(item), keys(&renamed["CFItems"][2]));
}
