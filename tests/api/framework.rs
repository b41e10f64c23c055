//! The career framework through the public API and the `ladder framework`
//! commands: the built-in framework, rubric lifecycle, pagination, etags,
//! request ids, bad input, tenant isolation and framework files.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use ladder::proto::v1::{
    self as pb, CreateCompetencyRequest, CreateRoleRequest, CreateRubricRequest,
    DeleteCompetencyRequest, DeleteRoleRequest, DeleteRubricRequest, GetCompetencyRequest,
    GetRubricRequest, ListCompetenciesRequest, ListRolesRequest, ListRubricsRequest,
    PublishRubricRequest, RetireRubricRequest, RubricState, TransitionKind,
    UpdateCompetencyRequest, UpdateRoleRequest, UpdateRubricRequest,
};
use prost_types::FieldMask;
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{Authed, TestServer, ladder_bin, traversable_temp_dir};

type Rubrics = pb::rubric_service_client::RubricServiceClient<Authed>;

/// SPEC §2: every role, and every transition as (from, to).
const ROLES: [&str; 24] = [
    "senior_engineer",
    "staff_engineer",
    "principal_engineer",
    "architect",
    "senior_architect",
    "senior_sre",
    "staff_sre",
    "senior_devops_engineer",
    "staff_devops_engineer",
    "specialist",
    "senior_specialist",
    "engineering_manager",
    "senior_engineering_manager",
    "director_of_engineering",
    "startup_cto",
    "product_manager",
    "senior_product_manager",
    "director_of_product",
    "technical_program_manager",
    "senior_technical_program_manager",
    "solutions_engineer",
    "sales_engineer",
    "developer_advocate",
    "startup_ceo",
];

const PATHS: [(&str, &str); 10] = [
    ("staff_engineer", "principal_engineer"),
    ("architect", "senior_architect"),
    ("senior_sre", "staff_sre"),
    ("senior_devops_engineer", "staff_devops_engineer"),
    ("specialist", "senior_specialist"),
    ("engineering_manager", "senior_engineering_manager"),
    ("senior_engineering_manager", "director_of_engineering"),
    ("product_manager", "senior_product_manager"),
    ("senior_product_manager", "director_of_product"),
    (
        "technical_program_manager",
        "senior_technical_program_manager",
    ),
];

/// The starting points of SPEC §2: each reached from Senior Engineer.
const FROM_SENIOR: [&str; 13] = [
    "staff_engineer",
    "architect",
    "senior_sre",
    "senior_devops_engineer",
    "specialist",
    "engineering_manager",
    "startup_cto",
    "product_manager",
    "technical_program_manager",
    "solutions_engineer",
    "sales_engineer",
    "developer_advocate",
    "startup_ceo",
];

/// The fields a google.rpc.BadRequest detail names.
fn bad_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("a BadRequest detail")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

async fn count(server: &TestServer, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&server.pool)
        .await
        .unwrap()
}

/// Row counts of every framework table, to show that nothing was written.
async fn counts(server: &TestServer) -> Vec<i64> {
    let mut all = Vec::new();
    for table in [
        "tenants",
        "competencies",
        "roles",
        "role_transitions",
        "rubric_versions",
        "rubric_competencies",
        "create_requests",
    ] {
        all.push(count(server, table).await);
    }
    all
}

fn levels() -> Vec<pb::LevelDescriptor> {
    (1..=5)
        .map(|level| pb::LevelDescriptor {
            level,
            title: format!("Level {level}"),
            description: "What this level looks like.".into(),
            behaviours: vec!["Does a visible thing.".into(), "Does another.".into()],
        })
        .collect()
}

fn competency(id: &str) -> pb::Competency {
    pb::Competency {
        id: id.into(),
        name: format!("Name of {id}"),
        description: "A test competency.".into(),
        levels: levels(),
        ..Default::default()
    }
}

fn expectation(id: &str, level: i32, weight: f64) -> pb::RubricCompetency {
    pb::RubricCompetency {
        competency_id: id.into(),
        expected_level: level,
        weight,
        critical: false,
        development_actions: vec!["Practise it.".into()],
        ..Default::default()
    }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

async fn get_rubric(
    client: &mut Rubrics,
    role: &str,
    version: i32,
) -> Result<pb::Rubric, tonic::Status> {
    client
        .get_rubric(GetRubricRequest {
            role_id: role.into(),
            version,
        })
        .await
        .map(|r| r.into_inner().rubric.unwrap())
}

async fn create_draft(client: &mut Rubrics, role: &str, weight: f64) -> pb::Rubric {
    client
        .create_rubric(CreateRubricRequest {
            rubric: Some(pb::Rubric {
                role_id: role.into(),
                competencies: vec![
                    expectation("system_design", 4, weight),
                    expectation("communication", 3, 1.0),
                ],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .rubric
        .unwrap()
}

async fn publish(
    client: &mut Rubrics,
    role: &str,
    version: i32,
) -> Result<pb::Rubric, tonic::Status> {
    client
        .publish_rubric(PublishRubricRequest {
            role_id: role.into(),
            version,
            etag: String::new(),
        })
        .await
        .map(|r| r.into_inner().rubric.unwrap())
}

async fn retire(
    client: &mut Rubrics,
    role: &str,
    version: i32,
) -> Result<pb::Rubric, tonic::Status> {
    client
        .retire_rubric(RetireRubricRequest {
            role_id: role.into(),
            version,
            etag: String::new(),
        })
        .await
        .map(|r| r.into_inner().rubric.unwrap())
}

async fn edit(client: &mut Rubrics, role: &str, version: i32) -> Result<pb::Rubric, tonic::Status> {
    client
        .update_rubric(UpdateRubricRequest {
            rubric: Some(pb::Rubric {
                role_id: role.into(),
                version,
                competencies: vec![expectation("system_design", 5, 2.0)],
                ..Default::default()
            }),
            update_mask: mask(&["competencies"]),
        })
        .await
        .map(|r| r.into_inner().rubric.unwrap())
}

async fn delete_draft(client: &mut Rubrics, role: &str, version: i32) -> Result<(), tonic::Status> {
    client
        .delete_rubric(DeleteRubricRequest {
            role_id: role.into(),
            version,
            etag: String::new(),
        })
        .await
        .map(drop)
}

fn state(rubric: &pb::Rubric) -> RubricState {
    RubricState::try_from(rubric.state).unwrap()
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code) {
    match result {
        Err(status) => assert_eq!(status.code(), code, "{status:?}"),
        Ok(value) => panic!("expected {code:?}, got {value:?}"),
    }
}

#[tokio::test]
async fn the_builtin_framework_loads_into_an_empty_tenant() {
    let server = TestServer::start().await;
    assert_eq!(count(&server, "tenants").await, 0);
    let mut client = server.clients("tenant-x").await.rubric;
    let roles = client
        .list_roles(ListRolesRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(roles.next_page_token.is_empty());
    let ids: BTreeSet<&str> = roles.roles.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ROLES.into_iter().collect());

    let mut edges = BTreeSet::new();
    for role in &roles.roles {
        assert!(
            [
                "individual_contributor",
                "management",
                "product",
                "business"
            ]
            .contains(&role.track_id.as_str()),
            "{}",
            role.id
        );
        assert!(role.seniority >= 3, "{}", role.id);
        for t in &role.transitions {
            assert_ne!(t.kind, TransitionKind::Unspecified as i32);
            edges.insert((role.id.as_str(), t.to_role_id.as_str()));
        }
        let rubric = get_rubric(&mut client, &role.id, 0).await.unwrap();
        assert_eq!(state(&rubric), RubricState::Published, "{}", role.id);
        assert_eq!(rubric.version, 1);
        assert!(rubric.publish_time.is_some());
        assert!(!rubric.competencies.is_empty());
    }
    let expected: BTreeSet<(&str, &str)> = PATHS
        .into_iter()
        .chain(FROM_SENIOR.into_iter().map(|to| ("senior_engineer", to)))
        .collect();
    assert_eq!(edges, expected);

    let staff = get_rubric(&mut client, "staff_engineer", 0).await.unwrap();
    let critical: BTreeSet<&str> = staff
        .competencies
        .iter()
        .filter(|c| c.critical)
        .map(|c| c.competency_id.as_str())
        .collect();
    assert_eq!(critical, ["system_design", "technical_influence"].into());
    let competencies = client
        .list_competencies(ListCompetenciesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .competencies;
    assert_eq!(competencies.len(), 16);
    assert!(competencies.iter().all(|c| c.levels.len() == 5));
    // Loaded once: a second caller of the same tenant finds it there.
    let before = counts(&server).await;
    let mut again = server.clients("tenant-x").await.rubric;
    get_rubric(&mut again, "staff_engineer", 0).await.unwrap();
    assert_eq!(counts(&server).await, before);
}

#[tokio::test]
async fn concurrent_first_calls_load_the_builtin_framework_once() {
    let server = TestServer::start().await;
    let mut calls = Vec::new();
    for _ in 0..4 {
        let mut client = server.clients("tenant-race").await.rubric;
        calls.push(tokio::spawn(async move {
            client
                .list_roles(ListRolesRequest::default())
                .await
                .unwrap()
        }));
    }
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(count(&server, "roles").await, 24);
    assert_eq!(count(&server, "rubric_versions").await, 24);
}

#[tokio::test]
async fn rubric_versions_move_only_forward() {
    let server = TestServer::start().await;
    let mut client = server.clients("tenant-x").await.rubric;
    let role = "staff_engineer";

    // A draft can be edited and deleted, not retired.
    let draft = create_draft(&mut client, role, 3.0).await;
    assert_eq!((draft.version, state(&draft)), (2, RubricState::Draft));
    let edited = edit(&mut client, role, 2).await.unwrap();
    assert_eq!(edited.competencies[0].expected_level, 5);
    assert_ne!(edited.etag, draft.etag);
    assert_code(retire(&mut client, role, 2).await, Code::FailedPrecondition);

    // Publishing freezes it and supersedes version 1 in the same step.
    let published = publish(&mut client, role, 2).await.unwrap();
    assert_eq!(state(&published), RubricState::Published);
    assert_eq!(get_rubric(&mut client, role, 0).await.unwrap().version, 2);
    let v1 = get_rubric(&mut client, role, 1).await.unwrap();
    assert_eq!(state(&v1), RubricState::Superseded);

    // A published version cannot be edited, deleted or published again...
    assert_code(edit(&mut client, role, 2).await, Code::FailedPrecondition);
    assert_code(
        delete_draft(&mut client, role, 2).await,
        Code::FailedPrecondition,
    );
    assert_code(
        publish(&mut client, role, 2).await,
        Code::FailedPrecondition,
    );
    assert_code(
        publish(&mut client, role, 1).await,
        Code::FailedPrecondition,
    );
    // ...and the database refuses too, whoever asks.
    let changed =
        sqlx::query("UPDATE rubric_competencies SET weight = 9 WHERE role_id = $1 AND version = 2")
            .bind(role)
            .execute(&server.pool)
            .await;
    assert!(
        changed.is_err(),
        "the trigger let a published rubric change"
    );

    // A draft is deleted, never retired.
    let draft = create_draft(&mut client, role, 1.0).await;
    assert_eq!(draft.version, 3);
    delete_draft(&mut client, role, 3).await.unwrap();
    assert_code(get_rubric(&mut client, role, 3).await, Code::NotFound);

    // Superseded and published versions retire; a retired one stays retired.
    assert_eq!(
        state(&retire(&mut client, role, 1).await.unwrap()),
        RubricState::Retired
    );
    assert_code(retire(&mut client, role, 1).await, Code::FailedPrecondition);
    assert_code(edit(&mut client, role, 1).await, Code::FailedPrecondition);
    retire(&mut client, role, 2).await.unwrap();
    assert_code(get_rubric(&mut client, role, 0).await, Code::NotFound);
    assert_eq!(
        state(&get_rubric(&mut client, role, 2).await.unwrap()),
        RubricState::Retired
    );
    let retired = client
        .list_rubrics(ListRubricsRequest {
            role_id: role.into(),
            state: RubricState::Retired as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rubrics;
    assert_eq!(
        retired.iter().map(|r| r.version).collect::<Vec<_>>(),
        [1, 2]
    );
}

#[tokio::test]
async fn what_published_rubrics_use_cannot_be_deleted() {
    let server = TestServer::start().await;
    let mut client = server.clients("tenant-x").await.rubric;
    let err = client
        .delete_competency(DeleteCompetencyRequest {
            competency_id: "system_design".into(),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    // Principal Engineer has a published rubric and is a transition target.
    for role in ["principal_engineer", "senior_engineer"] {
        let err = client
            .delete_role(DeleteRoleRequest {
                role_id: role.into(),
                etag: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{role}: {err:?}");
    }

    // What nothing uses can go: a new role with a draft, a new competency.
    client
        .create_competency(CreateCompetencyRequest {
            competency: Some(competency("whittling")),
            request_id: String::new(),
        })
        .await
        .unwrap();
    client
        .create_role(CreateRoleRequest {
            role: Some(pb::Role {
                id: "whittler".into(),
                name: "Whittler".into(),
                track_id: "business".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    create_draft(&mut client, "whittler", 1.0).await;
    let before = count(&server, "roles").await;
    client
        .delete_role(DeleteRoleRequest {
            role_id: "whittler".into(),
            etag: String::new(),
        })
        .await
        .unwrap();
    client
        .delete_competency(DeleteCompetencyRequest {
            competency_id: "whittling".into(),
            etag: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(count(&server, "roles").await, before - 1);
    let err = client
        .get_competency(GetCompetencyRequest {
            competency_id: "whittling".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn lists_page_through_in_a_stable_order() {
    let server = TestServer::start().await;
    let mut client = server.clients("tenant-x").await.rubric;
    let mut ids = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_competencies(ListCompetenciesRequest {
                page_size: 5,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.competencies.len() <= 5);
        ids.extend(page.competencies.into_iter().map(|c| c.id));
        pages += 1;
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 4);
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "pages overlap or are out of order");
    assert_eq!(ids.len(), 16);

    // Rubric versions page by (role, version), with filters.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_rubrics(ListRubricsRequest {
                page_size: 7,
                page_token: token,
                state: RubricState::Published as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.rubrics.into_iter().map(|r| r.role_id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let mut expected: Vec<String> = ROLES.iter().map(|r| r.to_string()).collect();
    expected.sort();
    assert_eq!(seen, expected);

    let management = client
        .list_roles(ListRolesRequest {
            track_id: "management".into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(management.roles.len(), 2);
    assert!(!management.next_page_token.is_empty());
    assert!(management.roles.iter().all(|r| r.track_id == "management"));

    let err = client
        .list_roles(ListRolesRequest {
            page_token: "not a token".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["page_token"]);
    let err = client
        .list_competencies(ListCompetenciesRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["page_size"]);
}

#[tokio::test]
async fn a_stale_etag_is_aborted() {
    let server = TestServer::start().await;
    let mut client = server.clients("tenant-x").await.rubric;
    let original = client
        .get_competency(GetCompetencyRequest {
            competency_id: "mentoring".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .competency
        .unwrap();
    let update = |etag: String, name: &str| UpdateCompetencyRequest {
        competency: Some(pb::Competency {
            id: "mentoring".into(),
            name: name.into(),
            etag,
            ..Default::default()
        }),
        update_mask: mask(&["name"]),
    };
    let updated = client
        .update_competency(update(original.etag.clone(), "Coaching"))
        .await
        .unwrap()
        .into_inner()
        .competency
        .unwrap();
    assert_eq!(updated.name, "Coaching");
    assert_eq!(
        updated.levels, original.levels,
        "the mask left levels alone"
    );
    assert_ne!(updated.etag, original.etag);

    let err = client
        .update_competency(update(original.etag.clone(), "Lost update"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
    let err = client
        .delete_competency(DeleteCompetencyRequest {
            competency_id: "mentoring".into(),
            etag: original.etag,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{err:?}");

    let draft = create_draft(&mut client, "architect", 2.0).await;
    edit(&mut client, "architect", draft.version).await.unwrap();
    let err = client
        .publish_rubric(PublishRubricRequest {
            role_id: "architect".into(),
            version: draft.version,
            etag: draft.etag,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
}

#[tokio::test]
async fn a_retried_create_returns_the_first_result_and_writes_once() {
    let server = TestServer::start().await;
    let mut client = server.clients("tenant-x").await.rubric;
    let create = || CreateCompetencyRequest {
        competency: Some(competency("negotiation")),
        request_id: "6f1c2a9e-retry".into(),
    };
    let first = client
        .create_competency(create())
        .await
        .unwrap()
        .into_inner();
    let before = counts(&server).await;
    let second = client
        .create_competency(create())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);
    assert_eq!(counts(&server).await, before);

    let create = || CreateRubricRequest {
        rubric: Some(pb::Rubric {
            role_id: "sales_engineer".into(),
            competencies: vec![expectation("negotiation", 3, 2.0)],
            ..Default::default()
        }),
        request_id: "rubric-retry".into(),
    };
    let first = client.create_rubric(create()).await.unwrap().into_inner();
    let before = counts(&server).await;
    let second = client.create_rubric(create()).await.unwrap().into_inner();
    assert_eq!(first, second);
    assert_eq!(first.rubric.unwrap().version, 2);
    assert_eq!(counts(&server).await, before);

    // Without a request id, a second create of the same competency conflicts.
    let err = client
        .create_competency(CreateCompetencyRequest {
            competency: Some(competency("negotiation")),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn bad_input_names_every_field_and_writes_nothing() {
    let server = TestServer::start().await;
    let mut client = server.clients("tenant-x").await.rubric;
    client
        .list_roles(ListRolesRequest::default())
        .await
        .unwrap();
    let before = counts(&server).await;

    let mut bad = competency("Bad-Id");
    bad.name = " ".into();
    bad.levels.pop();
    bad.levels[1].level = 7;
    bad.description = "x".repeat(2001);
    let err = client
        .create_competency(CreateCompetencyRequest {
            competency: Some(bad),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&err),
        [
            "competency.id",
            "competency.name",
            "competency.description",
            "competency.levels",
            "competency.levels[1].level"
        ]
    );

    let err = client
        .create_rubric(CreateRubricRequest {
            rubric: Some(pb::Rubric {
                role_id: "staff_engineer".into(),
                competencies: vec![
                    expectation("system_design", 0, 1.0),
                    expectation("juggling", 3, 1.0),
                    expectation("communication", 3, f64::NAN),
                    expectation("mentoring", 3, -1.0),
                ],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&err),
        [
            "rubric.competencies[0].expected_level",
            "rubric.competencies[2].weight",
            "rubric.competencies[3].weight"
        ]
    );
    let err = client
        .create_rubric(CreateRubricRequest {
            rubric: Some(pb::Rubric {
                role_id: "staff_engineer".into(),
                competencies: vec![expectation("juggling", 3, 1.0)],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["rubric.competencies[0].competency_id"]);

    let role = |transitions: Vec<pb::Transition>| pb::Role {
        id: "juggler".into(),
        name: "Juggler".into(),
        track_id: "business".into(),
        transitions,
        ..Default::default()
    };
    let err = client
        .create_role(CreateRoleRequest {
            role: Some(role(vec![
                pb::Transition {
                    to_role_id: "clown".into(),
                    kind: TransitionKind::Lateral as i32,
                },
                pb::Transition {
                    to_role_id: "staff_engineer".into(),
                    kind: TransitionKind::Unspecified as i32,
                },
            ])),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["role.transitions[1].kind"]);
    let err = client
        .create_role(CreateRoleRequest {
            role: Some(role(vec![pb::Transition {
                to_role_id: "clown".into(),
                kind: TransitionKind::Lateral as i32,
            }])),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["role.transitions[0].to_role_id"]);

    let err = client
        .update_role(UpdateRoleRequest {
            role: Some(pb::Role {
                id: "staff_engineer".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name", "salary"]),
        })
        .await
        .unwrap_err();
    // The mask names the name, so it is required.
    assert_eq!(bad_fields(&err), ["update_mask", "role.name"]);
    let err = client
        .update_role(UpdateRoleRequest {
            role: Some(pb::Role {
                id: "staff_engineer".into(),
                track_id: "no_such_track".into(),
                ..Default::default()
            }),
            update_mask: mask(&["track_id"]),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["role.track_id"]);
    let err = client
        .get_rubric(GetRubricRequest {
            role_id: "staff_engineer".into(),
            version: -1,
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["version"]);

    assert_eq!(counts(&server).await, before);
}

#[tokio::test]
async fn tenants_do_not_see_each_others_framework() {
    let server = TestServer::start().await;
    let mut a = server.clients("tenant-a").await.rubric;
    let mut b = server.clients("tenant-b").await.rubric;
    a.create_competency(CreateCompetencyRequest {
        competency: Some(competency("secret_sauce")),
        request_id: String::new(),
    })
    .await
    .unwrap();
    let draft = create_draft(&mut a, "staff_engineer", 1.0).await;
    publish(&mut a, "staff_engineer", draft.version)
        .await
        .unwrap();
    a.update_role(UpdateRoleRequest {
        role: Some(pb::Role {
            id: "architect".into(),
            name: "Solution Architect".into(),
            ..Default::default()
        }),
        update_mask: mask(&["name"]),
    })
    .await
    .unwrap();

    let err = b
        .get_competency(GetCompetencyRequest {
            competency_id: "secret_sauce".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        get_rubric(&mut b, "staff_engineer", 0)
            .await
            .unwrap()
            .version,
        1
    );
    let architect = b
        .get_role(pb::GetRoleRequest {
            role_id: "architect".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    assert_eq!(architect.name, "Architect");
    assert_eq!(count(&server, "tenants").await, 2);
}

/// Servers keep each tenant's catalog in memory; what one replica changes,
/// another uses from its next call on.
#[tokio::test]
async fn every_replica_scores_against_the_framework_as_last_changed() {
    let server = TestServer::start().await;
    let replica = server.replica().await;
    let mut here = server.clients("tenant-r").await;
    let mut there = replica.clients("tenant-r").await;
    here.record_subject("emp-1", "senior_engineer").await;
    let role = "staff_engineer";
    let assess = |version: i32| pb::CreateAssessmentRequest {
        subject_id: "emp-1".into(),
        role_id: role.into(),
        rubric_version: version,
        validate_only: true,
        ..Default::default()
    };
    let recommend = || pb::RecommendRequest {
        subject_id: "emp-1".into(),
        current_role_id: "senior_engineer".into(),
        max_recommendations: 100,
        ..Default::default()
    };
    let staff = |response: pb::RecommendResponse| {
        response
            .recommendations
            .into_iter()
            .find(|r| r.role_id == role)
            .unwrap()
    };
    let mut assessment = here.assessment.clone();
    let mut assessed = async |version| {
        assessment
            .create_assessment(assess(version))
            .await
            .map(|r| r.into_inner().assessment.unwrap())
    };
    let builtin = get_rubric(&mut here.rubric, role, 1).await.unwrap();
    let first = assessed(0).await.unwrap();
    assert_eq!(first.rubric_version, 1);
    assert_eq!(first.competencies.len(), builtin.competencies.len());
    let before = staff(
        here.recommendation
            .recommend(recommend())
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(
        (before.rubric_version, before.role_name.as_str()),
        (1, "Staff Engineer")
    );

    let draft = create_draft(&mut there.rubric, role, 3.0).await;
    // A draft is never scored, not even when asked for by number.
    assert_code(assessed(draft.version).await, Code::FailedPrecondition);
    publish(&mut there.rubric, role, draft.version)
        .await
        .unwrap();
    there
        .rubric
        .update_role(UpdateRoleRequest {
            role: Some(pb::Role {
                id: role.into(),
                name: "Staff Software Engineer".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        })
        .await
        .unwrap();

    let second = assessed(0).await.unwrap();
    assert_eq!(second.rubric_version, draft.version);
    let scored: Vec<&str> = second
        .competencies
        .iter()
        .map(|c| c.competency_id.as_str())
        .collect();
    assert_eq!(scored, ["system_design", "communication"]);
    let after = staff(
        here.recommendation
            .recommend(recommend())
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(
        (after.rubric_version, after.role_name.as_str()),
        (draft.version, "Staff Software Engineer")
    );
    // The superseded version can still be asked for by number.
    let old = assessed(1).await.unwrap();
    assert_eq!(old.rubric_version, 1);
    assert_eq!(old.competencies.len(), builtin.competencies.len());

    // Transitions changed on the replica reshape the other server's paths.
    there
        .rubric
        .update_role(UpdateRoleRequest {
            role: Some(pb::Role {
                id: "senior_engineer".into(),
                transitions: vec![pb::Transition {
                    to_role_id: "specialist".into(),
                    kind: TransitionKind::Lateral as i32,
                }],
                ..Default::default()
            }),
            update_mask: mask(&["transitions"]),
        })
        .await
        .unwrap();
    let reachable: Vec<String> = here
        .recommendation
        .recommend(recommend())
        .await
        .unwrap()
        .into_inner()
        .recommendations
        .into_iter()
        .filter(|r| r.steps > 0)
        .map(|r| r.path[1].clone())
        .collect();
    assert!(!reachable.is_empty());
    assert!(
        reachable.iter().all(|first| first == "specialist"),
        "{reachable:?}"
    );

    // With its only published version retired, the role has none to score against.
    retire(&mut there.rubric, role, draft.version)
        .await
        .unwrap();
    assert_code(assessed(0).await, Code::NotFound);
}

fn ladder(server: &TestServer, args: &[&str]) -> Output {
    Command::new(ladder_bin())
        .args(["framework"])
        .args(args)
        .args([
            "--direct",
            "--tenant",
            "people-ops",
            "--log-format",
            "text",
            "--database-url",
            &server.database_url(),
        ])
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn export(server: &TestServer, file: &Path) -> String {
    ok(ladder(
        server,
        &["export", "--output", file.to_str().unwrap()],
    ));
    std::fs::read_to_string(file).unwrap()
}

#[tokio::test]
async fn export_import_export_round_trips() {
    let server = TestServer::start().await;
    let dir = traversable_temp_dir();
    let init = ok(ladder(&server, &["init"]));
    assert!(init.contains("created   role staff_engineer"), "{init}");
    let first = export(&server, &dir.path().join("first.yaml"));

    // An unchanged export changes nothing.
    let before = counts(&server).await;
    let report = ok(ladder(
        &server,
        &["import", dir.path().join("first.yaml").to_str().unwrap()],
    ));
    assert!(report.contains("0 created, 0 changed"), "{report}");
    assert_eq!(counts(&server).await, before);
    assert_eq!(export(&server, &dir.path().join("second.yaml")), first);

    // A changed rubric becomes a new published version; dry run writes nothing.
    let changed = first.replacen("weight: 3.0", "weight: 2.75", 1);
    let file = dir.path().join("changed.yaml");
    std::fs::write(&file, &changed).unwrap();
    let dry = ok(ladder(
        &server,
        &["import", file.to_str().unwrap(), "--dry-run"],
    ));
    assert!(dry.contains("dry run"), "{dry}");
    assert!(dry.contains("supersedes version 1"), "{dry}");
    assert_eq!(counts(&server).await, before);
    let applied = ok(ladder(&server, &["import", file.to_str().unwrap()]));
    assert!(
        applied.contains("version 2 (published, supersedes version 1)"),
        "{applied}"
    );
    assert_eq!(export(&server, &dir.path().join("third.yaml")), changed);
    let superseded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM rubric_versions WHERE tenant_id = 'people-ops' AND state = 'superseded'",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(superseded, 1);

    // The built-in file itself reads back to the same framework.
    let builtin = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("framework/builtin.yaml"),
    )
    .unwrap();
    let fresh = TestServer::start().await;
    let builtin_file = dir.path().join("builtin.yaml");
    std::fs::write(&builtin_file, builtin).unwrap();
    ok(ladder(&fresh, &["import", builtin_file.to_str().unwrap()]));
    assert_eq!(export(&fresh, &dir.path().join("fresh.yaml")), first);
}

#[tokio::test]
async fn an_import_with_one_bad_row_writes_nothing() {
    let server = TestServer::start().await;
    let dir = traversable_temp_dir();
    ok(ladder(&server, &["init"]));
    let text = export(&server, &dir.path().join("export.yaml"));
    let before = counts(&server).await;

    // A new competency, a new weight, and one bad expected level in roles[3].
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let new = serde_yaml_ng::to_value(competency_yaml("whittling")).unwrap();
    doc["competencies"].as_sequence_mut().unwrap().push(new);
    doc["roles"][0]["rubric"]["competencies"][0]["weight"] = 1.25.into();
    doc["roles"][3]["rubric"]["competencies"][2]["expected_level"] = 9.into();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();

    let out = ladder(&server, &["import", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    // The line of the bad value, found in the file as written.
    let written = std::fs::read_to_string(&file).unwrap();
    let architect = written.find("id: architect").unwrap();
    let bad = architect + written[architect..].find("expected_level: 9").unwrap();
    let line = 1 + written[..bad].matches('\n').count();
    let expected = format!(
        "roles[3].rubric.competencies[2].expected_level: (role \"architect\") line {line}, column"
    );
    assert!(message.contains(&expected), "{expected}\n{message}");
    assert!(message.contains("must be 1..5"), "{message}");
    assert_eq!(counts(&server).await, before);
}

/// A competency as a framework file holds it.
fn competency_yaml(id: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "name": "Whittling",
        "description": "Carving wood.",
        "levels": (1..=5).map(|level| serde_json::json!({
            "level": level,
            "title": format!("Level {level}"),
            "description": "Carves.",
            "behaviours": ["Carves a spoon."],
        })).collect::<Vec<_>>(),
    })
}

/// A small framework file: `roles` as (id, seniority, competencies of its
/// rubric or `None` for no rubric key), in the order given.
fn small_framework(
    competencies: &[&str],
    roles: &[(&str, i32, Option<&[&str]>)],
    complete: bool,
) -> String {
    let doc = serde_json::json!({
        "format": "ladder.framework/v1",
        "mode": if complete { "complete" } else { "merge" },
        "tracks": [{"id": "craft", "name": "Craft", "description": ""}],
        "competencies": competencies.iter().map(|id| competency_yaml(id)).collect::<Vec<_>>(),
        "roles": roles.iter().map(|(id, seniority, rubric)| {
            let mut role = serde_json::json!({
                "id": id, "name": id, "track": "craft", "seniority": seniority,
                "description": "", "transitions": [],
            });
            if let Some(rubric) = rubric {
                role["rubric"] = serde_json::json!({"competencies": rubric.iter().map(|c| serde_json::json!({
                    "competency": c, "expected_level": 3, "weight": 1.0,
                    "critical": false, "development_actions": [],
                })).collect::<Vec<_>>()});
            }
            role
        }).collect::<Vec<_>>(),
    });
    serde_yaml_ng::to_string(&doc).unwrap()
}

fn import_text(server: &TestServer, dir: &Path, text: &str, flags: &[&str]) -> Output {
    let file = dir.join("framework.yaml");
    std::fs::write(&file, text).unwrap();
    let mut args = vec!["import", file.to_str().unwrap()];
    args.extend_from_slice(flags);
    ladder(server, &args)
}

#[tokio::test]
async fn export_keeps_the_order_of_the_imported_file() {
    let server = TestServer::start().await;
    let dir = traversable_temp_dir();
    let text = small_framework(
        &["weaving", "carving", "arguing"],
        &[
            ("master", 3, Some(&["carving", "weaving"])),
            ("journeyman", 2, Some(&["arguing"])),
            ("apprentice", 1, None),
        ],
        false,
    );
    ok(import_text(&server, dir.path(), &text, &[]));
    let exported: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&export(&server, &dir.path().join("out.yaml"))).unwrap();
    let ids = |list: &str| -> Vec<String> {
        exported[list]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("competencies"), ["weaving", "carving", "arguing"]);
    assert_eq!(ids("roles"), ["master", "journeyman", "apprentice"]);
    assert_eq!(ids("tracks"), ["craft"]);
}

#[tokio::test]
async fn prune_removes_or_retires_what_the_file_no_longer_has() {
    let server = TestServer::start().await;
    let dir = traversable_temp_dir();
    let full = small_framework(
        &["carving", "weaving", "arguing"],
        &[
            ("master", 3, Some(&["carving", "weaving"])),
            ("orator", 3, Some(&["arguing"])),
            ("novice", 1, None),
        ],
        false,
    );
    ok(import_text(&server, dir.path(), &full, &[]));
    let smaller = small_framework(
        &["carving", "weaving"],
        &[("master", 3, Some(&["carving", "weaving"]))],
        false,
    );

    // Without --prune nothing goes, and the report names what was kept.
    let kept = ok(import_text(&server, dir.path(), &smaller, &[]));
    for item in [
        "kept      role orator",
        "kept      role novice",
        "kept      competency arguing",
    ] {
        assert!(kept.contains(item), "{kept}");
    }
    assert!(kept.contains("--prune"), "{kept}");

    // A dry run lists every removal and changes nothing.
    let before = export(&server, &dir.path().join("before.yaml"));
    let dry = ok(import_text(
        &server,
        dir.path(),
        &smaller,
        &["--prune", "--dry-run"],
    ));
    assert!(dry.contains("removed   role novice"), "{dry}");
    assert!(dry.contains("retired   role orator"), "{dry}");
    assert!(dry.contains("retired   competency arguing"), "{dry}");
    assert_eq!(export(&server, &dir.path().join("same.yaml")), before);

    // `mode: complete` in the file prunes like --prune.
    let complete = small_framework(
        &["carving", "weaving"],
        &[("master", 3, Some(&["carving", "weaving"]))],
        true,
    );
    ok(import_text(&server, dir.path(), &complete, &[]));
    let after: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&export(&server, &dir.path().join("after.yaml"))).unwrap();
    assert_eq!(after["roles"].as_sequence().unwrap().len(), 1);
    assert_eq!(after["competencies"].as_sequence().unwrap().len(), 2);
    // The retired role's rubric version stays for what cites it.
    let mut rubric = server.clients("people-ops").await.rubric;
    let version = rubric
        .get_rubric(GetRubricRequest {
            role_id: "orator".into(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner()
        .rubric
        .unwrap();
    assert_eq!(version.state, RubricState::Retired as i32);

    // Importing the full file again restores what was retired.
    let restored = ok(import_text(&server, dir.path(), &full, &[]));
    assert!(
        restored.contains("changed   role orator: restored"),
        "{restored}"
    );
    assert!(restored.contains("created   role novice"), "{restored}");
}

#[tokio::test]
async fn prune_refuses_to_drop_a_competency_a_published_rubric_still_expects() {
    let server = TestServer::start().await;
    let dir = traversable_temp_dir();
    let full = small_framework(
        &["carving", "weaving"],
        &[("master", 3, Some(&["carving", "weaving"]))],
        false,
    );
    ok(import_text(&server, dir.path(), &full, &[]));
    let before = export(&server, &dir.path().join("before.yaml"));
    // The role stays, without a rubric in the file: its published version
    // still expects weaving.
    let without = small_framework(&["carving"], &[("master", 3, None)], false);
    let out = import_text(&server, dir.path(), &without, &["--prune"]);
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("weaving (used by master version 1)"),
        "{message}"
    );
    assert_eq!(export(&server, &dir.path().join("after.yaml")), before);
}

#[tokio::test]
async fn framework_file_mistakes_name_their_line_and_a_close_match() {
    let server = TestServer::start().await;
    let dir = traversable_temp_dir();
    let text = small_framework(
        &["carving", "weaving"],
        &[("master", 3, Some(&["carving", "weavng"]))],
        false,
    );
    let out = import_text(&server, dir.path(), &text, &[]);
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    let line = 1 + text[..text.find("competency: weavng").unwrap()]
        .matches('\n')
        .count();
    assert!(
        message.contains(&format!(
            "roles[0].rubric.competencies[1].competency: (role \"master\") line {line}, column"
        )),
        "{message}"
    );
    assert!(message.contains("did you mean \"weaving\"?"), "{message}");

    for (bytes, expected) in [
        (&b""[..], "the file is empty"),
        (&b"format: [unclosed"[..], "the file is not valid YAML"),
        (
            &b"format: ladder.framework/v1\nname: caf\xe9\n"[..],
            "byte offset 37",
        ),
    ] {
        let file = dir.path().join("broken.yaml");
        std::fs::write(&file, bytes).unwrap();
        let out = ladder(&server, &["import", file.to_str().unwrap()]);
        assert!(!out.status.success());
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(message.contains(expected), "{expected}: {message}");
    }
    let typed = text.replacen("expected_level: 3", "expected_level: '3'", 1);
    let out = import_text(&server, dir.path(), &typed, &[]);
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("expected a whole number 1-5, found the text \"3\""),
        "{message}"
    );
    // Nothing of any of these reached the tenant.
    let out = ladder(&server, &["export"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("people-ops"));
}

/// An assessment cites a rubric version; that version keeps the words its
/// competencies had when it was published, whatever is edited later.
#[tokio::test]
async fn a_published_version_keeps_the_competency_texts_it_was_published_with() {
    let server = TestServer::start().await;
    let mut client = server.clients("tenant-a").await.rubric;
    let draft = create_draft(&mut client, "staff_engineer", 3.0).await;
    assert!(
        draft
            .competencies
            .iter()
            .all(|c| c.published_name.is_empty())
    );
    let first = publish(&mut client, "staff_engineer", draft.version)
        .await
        .unwrap();
    let design = |r: &pb::Rubric| {
        r.competencies
            .iter()
            .find(|c| c.competency_id == "system_design")
            .cloned()
            .unwrap()
    };
    let before = client
        .get_competency(GetCompetencyRequest {
            competency_id: "system_design".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .competency
        .unwrap();
    assert_eq!(design(&first).published_name, before.name);
    assert_eq!(design(&first).published_levels, before.levels);

    let mut renamed = before.clone();
    renamed.name = "Systems architecture".into();
    renamed.levels[3].title = "Leads design across teams".into();
    client
        .update_competency(UpdateCompetencyRequest {
            competency: Some(renamed.clone()),
            update_mask: mask(&["name", "levels"]),
        })
        .await
        .unwrap();

    // The published version still reads as it was published...
    let again = get_rubric(&mut client, "staff_engineer", first.version)
        .await
        .unwrap();
    assert_eq!(design(&again).published_name, before.name);
    assert_eq!(design(&again).published_levels, before.levels);
    // ...and the next published version carries the new words.
    let next = create_draft(&mut client, "staff_engineer", 2.0).await;
    let second = publish(&mut client, "staff_engineer", next.version)
        .await
        .unwrap();
    assert_eq!(design(&second).published_name, "Systems architecture");
    assert_eq!(
        design(&second).published_levels[3].title,
        "Leads design across teams"
    );
}

/// `GetRole` is answered from memory: a replica's own writes show at once,
/// another replica's as soon as their notification arrives, and while the
/// listener's connection is gone nothing is served from memory, so a change
/// it could not hear of is never hidden.
#[tokio::test(flavor = "multi_thread")]
async fn get_role_follows_every_replicas_changes_and_survives_a_lost_listener() {
    let server = TestServer::start().await;
    let replica = server.replica().await;
    let mut here = server.clients("tenant-g").await.rubric;
    let mut there = replica.clients("tenant-g").await.rubric;
    let role = "staff_engineer";
    let name = async |client: &mut Rubrics| {
        client
            .get_role(pb::GetRoleRequest {
                role_id: role.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .role
            .unwrap()
            .name
    };
    let rename = async |client: &mut Rubrics, to: &str| {
        client
            .update_role(UpdateRoleRequest {
                role: Some(pb::Role {
                    id: role.into(),
                    name: to.into(),
                    ..Default::default()
                }),
                update_mask: mask(&["name"]),
            })
            .await
            .unwrap();
    };
    // Polls `client` until it answers `expected`, for up to five seconds.
    let becomes = async |client: &mut Rubrics, expected: &str| {
        for _ in 0..100 {
            if name(client).await == expected {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    };
    assert_eq!(name(&mut here).await, "Staff Engineer");
    assert_eq!(name(&mut there).await, "Staff Engineer");

    // Served from memory: answered while the table is locked against any
    // read. (The first read may not have been kept: the notifications of the
    // built-in framework's loading, which that call began with, came after.)
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    name(&mut here).await;
    let mut lock = server.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE roles IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    for _ in 0..20 {
        let mut request = tonic::Request::new(pb::GetRoleRequest {
            role_id: role.into(),
        });
        request.set_timeout(std::time::Duration::from_millis(500));
        let answered = here.get_role(request).await;
        assert!(
            answered.is_ok(),
            "a cached role waited for the database: {answered:?}"
        );
    }
    lock.rollback().await.unwrap();

    rename(&mut here, "Staff Engineer I").await;
    assert_eq!(
        name(&mut here).await,
        "Staff Engineer I",
        "a replica's own write"
    );
    assert!(
        becomes(&mut there, "Staff Engineer I").await,
        "another replica's write"
    );

    // The listeners' connections are cut, and the role changes before they
    // can listen again: no notification will ever tell of it.
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = $1",
    )
    .bind(ladder::storage::FRAMEWORK_LISTENER_APPLICATION_NAME)
    .fetch_all(&server.pool)
    .await
    .unwrap();
    assert_eq!(cut, [true, true], "one listener per server");
    // As the owner, which row-level security does not bind.
    sqlx::query(
        "UPDATE roles SET name = 'Staff Engineer II' WHERE tenant_id = 'tenant-g' AND id = $1",
    )
    .bind(role)
    .execute(&server.pool)
    .await
    .unwrap();
    assert!(becomes(&mut here, "Staff Engineer II").await);
    assert!(becomes(&mut there, "Staff Engineer II").await);
    // Listening again, both follow the next change.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    rename(&mut here, "Staff Engineer III").await;
    assert!(becomes(&mut there, "Staff Engineer III").await);
}

/// A company's own framework (several tracks, 15 competencies, 8 roles, one
/// without a rubric) written like docs/framework.md's examples, imported
/// with --prune over the built-in one: every built-in track, role and
/// competency leaves, the export is the file byte for byte, and importing
/// it again changes nothing.
#[tokio::test]
async fn an_own_framework_replaces_the_builtin_one_and_round_trips_unchanged() {
    let server = TestServer::start().await;
    let dir = traversable_temp_dir();
    let text = include_str!("../data/ft_framework.yaml");
    ok(ladder(&server, &["init"]));

    let dry = ok(import_text(
        &server,
        dir.path(),
        text,
        &["--prune", "--dry-run"],
    ));
    for track in [
        "individual_contributor",
        "management",
        "product",
        "business",
    ] {
        assert!(dry.contains(&format!("retired   track {track}")), "{dry}");
    }
    assert!(dry.contains("retired   role startup_ceo"), "{dry}");
    assert!(dry.contains("retired   competency advocacy"), "{dry}");
    let pruned = ok(import_text(&server, dir.path(), text, &["--prune"]));
    assert_eq!(
        pruned.lines().filter(|l| l.starts_with("retired")).count(),
        dry.lines().filter(|l| l.starts_with("retired")).count(),
        "{pruned}"
    );

    assert_eq!(export(&server, &dir.path().join("out.yaml")), text);
    let again = ok(import_text(&server, dir.path(), text, &["--prune"]));
    assert!(
        again.ends_with("0 created, 0 changed, 34 unchanged\n"),
        "{again}"
    );
    assert_eq!(export(&server, &dir.path().join("again.yaml")), text);

    let mut rubric = server.clients("people-ops").await.rubric;
    let tracks: Vec<String> = rubric
        .list_tracks(pb::ListTracksRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tracks
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(
        tracks,
        [
            "engineering",
            "engineering_management",
            "platform",
            "technical_leadership"
        ]
    );

    // Importing the built-in framework again restores what the prune retired.
    let restored = ok(ladder(&server, &["init"]));
    assert!(
        restored.contains("changed   track business: restored"),
        "{restored}"
    );
    assert!(
        restored.contains("changed   role startup_ceo: restored"),
        "{restored}"
    );
    let tracks = rubric
        .list_tracks(pb::ListTracksRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tracks;
    assert_eq!(tracks.len(), 8);
}

/// The mistakes a person makes editing a framework file, all reported in
/// one run: each naming the file, its path, the item, its line and column,
/// and how to fix it; nothing is imported.
#[tokio::test]
async fn every_mistake_of_a_framework_file_is_reported_at_once() {
    let server = TestServer::start().await;
    let dir = traversable_temp_dir();
    let good = include_str!("../data/ft_framework.yaml");
    let line_of =
        |text: &str, needle: &str| 1 + text[..text.find(needle).unwrap()].matches('\n').count();

    // A missing track, a type error, a competency typo, a level out of
    // range and a duplicate id.
    let bad = good
        .replacen(
            "    track: technical_leadership\n    seniority: 5\n",
            "    seniority: 5\n",
            1,
        )
        .replacen("    seniority: 4\n", "    seniority: high\n", 1)
        .replacen(
            "        - competency: feedback\n",
            "        - competency: feedbak\n",
            1,
        )
        .replacen(
            "          expected_level: 2\n",
            "          expected_level: 6\n",
            1,
        )
        .replacen("  - id: hiring\n", "  - id: mentoring\n", 1);
    let out = import_text(&server, dir.path(), &bad, &[]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    let file = dir.path().join("framework.yaml");
    let file = file.display();
    let principal = line_of(&bad, "  - id: principal_engineer");
    let first_mentoring = line_of(&bad, "  - id: mentoring");
    for expected in [
        format!(
            "{file}: roles[4].track: (role \"principal_engineer\") line {principal}, column 7: \
             missing field \"track\""
        ),
        format!(
            "{file}: roles[3].seniority: (role \"tech_lead\") line {}, column 16: expected a whole \
             number 0-1000, found the text \"high\"",
            line_of(&bad, "seniority: high")
        ),
        format!(
            "(role \"senior_engineer\") line {}, column 23: unknown competency \"feedbak\": not defined \
             in this file (did you mean \"feedback\"?)",
            line_of(&bad, "competency: feedbak")
        ),
        format!(
            "{file}: roles[0].rubric.competencies[0].expected_level: (role \"junior_engineer\") line {}",
            line_of(&bad, "expected_level: 6")
        ),
        format!(
            "{file}: competencies[12].id: (competency \"mentoring\") line {}, column 9: duplicate \
             competency id \"mentoring\"; first defined at competencies[11].id, line {first_mentoring}",
            line_of(&bad, "  - id: mentoring\n    name: Hiring")
        ),
    ] {
        assert!(said.contains(&expected), "{expected}\n{said}");
    }

    // Wrong indentation: in words, with the fix.
    let indented = good.replacen("    name: Tech Lead\n", "      name: Tech Lead\n", 1);
    let out = import_text(&server, dir.path(), &indented, &[]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains(&format!(
            "{file}: line {}, column",
            line_of(&indented, "      name: Tech Lead")
        )),
        "{said}"
    );
    assert!(said.contains("the file is not valid YAML"), "{said}");
    assert!(said.contains("line it up with them"), "{said}");
    assert!(!said.contains("  : "), "{said}");

    // A key dedented out of its item: an unknown field there, a missing one here.
    let dedented = good.replacen("        title: Aware\n", "      title: Aware\n", 1);
    let out = import_text(&server, dir.path(), &dedented, &[]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("the file is not valid YAML") || said.contains("missing field \"title\""),
        "{said}"
    );

    // Nothing of any of these reached the tenant.
    let out = ladder(&server, &["export"]);
    assert!(!out.status.success());
}

/// `reassign` and `allow_stranded` over the API: only with a prune, from a
/// role the document leaves out to one it has; otherwise INVALID_ARGUMENT
/// naming each field, and nothing is written.
#[tokio::test]
async fn reassignments_are_checked_before_anything_is_written() {
    use ladder::proto::v1::framework_service_client::FrameworkServiceClient;
    let server = TestServer::start().await;
    let mut framework = FrameworkServiceClient::with_interceptor(
        server.channel().await,
        crate::harness::Bearer(Some(
            format!("Bearer {}", crate::harness::token("tenant-a"))
                .parse()
                .unwrap(),
        )),
    );
    let document = include_str!("../data/ft_framework.yaml")
        .as_bytes()
        .to_vec();
    let request = |prune: bool, reassign: &[(&str, &str)]| pb::ImportFrameworkRequest {
        format: pb::FrameworkFormat::Yaml as i32,
        document: document.clone(),
        prune,
        reassign: reassign
            .iter()
            .map(|(from, to)| pb::RoleReassignment {
                from_role_id: from.to_string(),
                to_role_id: to.to_string(),
            })
            .collect(),
        allow_stranded: !prune,
        ..Default::default()
    };
    let before = counts(&server).await;
    let status = framework
        .import_framework(request(false, &[("staff_engineer", "tech_lead")]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["reassign", "allow_stranded"]);
    let status = framework
        .import_framework(request(
            true,
            &[
                ("tech_lead", "nobody"),
                ("", "engineer"),
                ("staff_engineer", "engineer"),
                ("staff_engineer", "tech_lead"),
            ],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "reassign[0].from_role_id",
            "reassign[0].to_role_id",
            "reassign[1].from_role_id",
            "reassign[3].from_role_id",
        ]
    );
    assert_eq!(counts(&server).await, before);
}
