//! CASE 1.1 and xAPI: the pure translation of docs/standards.md, on the
//! built-in framework, the sample files under examples/ and generated input.

use chrono::TimeZone;
use ladder::domain::evidence::Source;
use ladder::domain::framework::Document;
use ladder::domain::standards::case::{
    CaseError, CaseExport, NoteKind, read_case, to_case, to_json,
};
use ladder::domain::standards::xapi::{CompetencyIndex, XapiAction, XapiOptions, map_statements};
use serde_json::{Value, json};

fn options() -> CaseExport {
    CaseExport::new(chrono::Utc.with_ymd_and_hms(2026, 1, 15, 9, 30, 0).unwrap())
}

#[test]
fn the_builtin_framework_round_trips_through_case_byte_for_byte() {
    let doc = Document::builtin();
    let first = to_json(&to_case(doc, &options()));
    let imported = read_case(first.as_bytes()).unwrap();
    assert!(imported.notes.is_empty(), "{:?}", imported.notes);
    assert_eq!(&imported.document, doc);
    assert_eq!(
        imported.info.title.as_deref(),
        Some("Ladder career framework")
    );
    let second = to_json(&to_case(&imported.document, &options()));
    assert_eq!(second, first);
}

#[test]
fn the_export_has_the_case_shape() {
    let package: Value =
        serde_json::from_str(&to_json(&to_case(Document::builtin(), &options()))).unwrap();
    let document = &package["CFDocument"];
    for field in [
        "identifier",
        "uri",
        "title",
        "creator",
        "version",
        "adoptionStatus",
        "lastChangeDateTime",
    ] {
        assert!(document[field].is_string(), "CFDocument.{field}");
    }
    assert_eq!(document["caseVersion"], "1.1");
    let items = package["CFItems"].as_array().unwrap();
    let competency = items
        .iter()
        .find(|i| i["humanCodingScheme"] == "system_design")
        .unwrap();
    assert_eq!(competency["CFItemType"], "Competency");
    assert!(competency["fullStatement"].is_string());
    let children_of = |id: &Value| {
        package["CFAssociations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| {
                a["associationType"] == "isChildOf" && a["destinationNodeURI"]["identifier"] == *id
            })
            .count()
    };
    assert_eq!(children_of(&competency["identifier"]), 5);
    let rubric = &package["CFRubrics"][0];
    let criterion = &rubric["CFRubricCriteria"][0];
    assert!(criterion["CFItemURI"]["uri"].is_string());
    assert!(criterion["weight"].is_number());
    assert_eq!(criterion["position"], 1);
    let scores: Vec<f64> = criterion["CFRubricCriterionLevels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["score"].as_f64().unwrap())
        .collect();
    assert_eq!(scores, [1.0, 2.0, 3.0, 4.0, 5.0]);
    assert!(
        package["CFAssociations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["associationType"] == "precedes")
    );
}

/// examples/framework.case.json is written the way other tools write CASE:
/// groupings nested several deep, CFItemType variants, a numeric string as
/// sequenceNumber, a link given as a bare URI, extra keys, an item replaced by
/// another, crosswalks and an unknown association type, an item without text,
/// and a rubric that is not a Ladder role's.
#[test]
fn a_third_party_package_imports_its_competencies_and_reports_the_rest() {
    let imported = read_case(include_bytes!("../examples/framework.case.json")).unwrap();
    let doc = &imported.document;
    assert!(doc.validate().is_empty());
    assert!(doc.tracks.is_empty() && doc.roles.is_empty());
    assert_eq!(
        doc.competency_ids(),
        [
            "statistical_reasoning",
            "data_visualisation",
            "designs_data_models_that_keep_meaning_stable_as",
            "pipeline_reliability",
            "stakeholder_communication",
        ]
    );
    // Its own five "Proficiency Level" items, with their indicators as behaviours.
    let stats = &doc.competencies[0];
    let titles: Vec<&str> = stats.levels.iter().map(|l| l.title.as_str()).collect();
    assert_eq!(
        titles,
        ["Novice", "Developing", "Competent", "Proficient", "Leading"]
    );
    assert_eq!(stats.levels[2].behaviours.len(), 2);
    // No level structure: five generic levels that say so.
    assert!(
        doc.competencies[1]
            .levels
            .iter()
            .all(|l| l.description.starts_with("Generic level"))
    );
    // The five levels of a rubric criterion, lowest score first.
    assert_eq!(doc.competencies[3].levels[0].title, "Reactive");
    assert_eq!(doc.competencies[3].levels[4].title, "Exemplary");
    // Five untyped child items of a "Skill".
    assert_eq!(
        doc.competencies[4].levels[0].title,
        "Explains one chart to a peer."
    );

    let reasons = |kind: NoteKind| -> Vec<&str> {
        imported
            .notes
            .iter()
            .filter(|n| n.kind == kind)
            .map(|n| n.reason.as_str())
            .collect()
    };
    let skipped = reasons(NoteKind::Skipped);
    for expected in [
        "replaced by",
        "exactMatchOf has no counterpart",
        "unknown associationType \"ext:isPrerequisiteOf\"",
        "groups 2 items",
        "groups 1 item:",
        "groups 4 items",
        "neither fullStatement nor abbreviatedStatement",
        "not a Ladder role's rubric",
    ] {
        assert!(
            skipped.iter().any(|r| r.contains(expected)),
            "{expected}: {skipped:#?}"
        );
    }
    assert_eq!(skipped.len(), 8, "{skipped:#?}");
    let adjusted = reasons(NoteKind::Adjusted);
    assert_eq!(adjusted.len(), 5, "{adjusted:#?}");
    // Every note names an object of the file.
    let text = std::str::from_utf8(include_bytes!("../examples/framework.case.json")).unwrap();
    for note in &imported.notes {
        assert!(
            text.contains(&format!("\"{}\"", note.identifier)),
            "{note:?}"
        );
    }
}

/// A generated package of 5,000 items: 4 groupings, 666 competencies with
/// five level items each, and 1,000 competencies without levels.
#[test]
fn a_five_thousand_item_package_imports() {
    let document_id = "00000000-0000-4000-8000-000000000000";
    let mut items = Vec::new();
    let mut associations = Vec::new();
    let mut next = 0u32;
    let mut item = |statement: String, kind: &str, parent: Option<&str>, sequence: usize| {
        next += 1;
        let id = format!("00000000-0000-4000-8000-{next:012}");
        items.push(json!({"identifier": id, "fullStatement": statement, "CFItemType": kind}));
        associations.push(json!({
            "identifier": format!("10000000-0000-4000-8000-{next:012}"),
            "associationType": "isChildOf",
            "sequenceNumber": sequence,
            "originNodeURI": {"identifier": id},
            "destinationNodeURI": {"identifier": parent.unwrap_or(document_id)},
        }));
        id
    };
    let groups: Vec<String> = (0..4)
        .map(|g| item(format!("Area {g}"), "Domain", None, g))
        .collect();
    for c in 0..1666 {
        let parent = &groups[c % 4];
        let competency = item(
            format!("Competency number {c}"),
            "Standard",
            Some(parent),
            c,
        );
        if c < 666 {
            for l in 1..=5 {
                item(
                    format!("Level {l} of {c}"),
                    "Performance Level",
                    Some(&competency),
                    l,
                );
            }
        }
    }
    assert_eq!(items.len(), 5000);
    let package = json!({
        "CFDocument": {"identifier": document_id, "title": "Generated"},
        "CFItems": items,
        "CFAssociations": associations,
    });
    let bytes = serde_json::to_vec(&package).unwrap();
    let started = std::time::Instant::now();
    let imported = read_case(&bytes).unwrap();
    eprintln!("5,000 items imported in {:?}", started.elapsed());
    assert_eq!(imported.document.competencies.len(), 1666);
    assert_eq!(imported.document.competencies[0].id, "competency_number_0");
    assert_eq!(
        imported.document.competencies[0].levels[4].title,
        "Level 5 of 0"
    );
    let generic = imported
        .notes
        .iter()
        .filter(|n| n.reason.contains("generic level descriptors"))
        .count();
    assert_eq!(generic, 1000);
}

fn competencies() -> CompetencyIndex {
    CompetencyIndex::new(&options().base_uri, Document::builtin().competency_ids())
}

fn statement(id: &str, actor: Value, object: &str, result: Value) -> Value {
    json!({
        "id": id,
        "actor": actor,
        "verb": {"id": "http://adlnet.gov/expapi/verbs/passed", "display": {"en-US": "passed"}},
        "object": {"objectType": "Activity", "id": object},
        "result": result,
        "timestamp": "2026-03-02T10:00:00Z",
        "version": "2.0.0"
    })
}

#[test]
fn xapi_statements_map_to_evidence_and_each_bad_one_is_reported() {
    let person = json!({"account": {"homePage": "https://hris.example", "name": "emp-1042"}});
    let design = format!(
        "https://ladder.dev/ims/case/v1p1/CFItems/{}",
        ladder::domain::standards::case::competency_identifier("system_design")
    );
    let first = statement(
        "0b3d4c1e-7a35-4a8e-9f0c-2f6f3c1d9a01",
        person.clone(),
        "mentoring",
        json!({"score": {"scaled": 0.75}}),
    );
    let mut second = statement(
        "0b3d4c1e-7a35-4a8e-9f0c-2f6f3c1d9a02",
        person.clone(),
        &design,
        json!({"score": {"raw": 18, "min": 0, "max": 24}}),
    );
    second["context"] = json!({
        "instructor": {"account": {"homePage": "https://hris.example", "name": "mgr-77"}},
        "extensions": {
            "https://ladder.dev/xapi/source": "manager",
            "https://ladder.dev/xapi/confidence": 0.8
        }
    });
    let mut changed = first.clone();
    changed["result"]["score"]["scaled"] = json!(0.5);
    let statements = json!([
        first,
        second,
        first,
        changed,
        statement(
            "0b3d4c1e-7a35-4a8e-9f0c-2f6f3c1d9a05",
            json!({"mbox": "mailto:someone@example.com"}),
            "mentoring",
            json!({"score": {"scaled": 0.5}})
        ),
        statement(
            "0b3d4c1e-7a35-4a8e-9f0c-2f6f3c1d9a06",
            person.clone(),
            "https://lms.example/courses/kotlin-101",
            json!({"score": {"scaled": 0.5}})
        ),
        statement("0b3d4c1e-7a35-4a8e-9f0c-2f6f3c1d9a07", person.clone(), "mentoring", json!({"completion": true})),
        {
            "id": "0b3d4c1e-7a35-4a8e-9f0c-2f6f3c1d9a08",
            "actor": {"mbox": "mailto:lrs-admin@example.com"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
            "object": {"objectType": "StatementRef", "id": "0b3d4c1e-7a35-4a8e-9f0c-2f6f3c1d9a02"}
        }
    ]);
    let batch = map_statements(
        &serde_json::to_vec(&statements).unwrap(),
        &competencies(),
        &XapiOptions {
            hris_home_page: Some("https://hris.example".into()),
        },
    )
    .unwrap();

    let mapped: Vec<(usize, &XapiAction)> =
        batch.mapped.iter().map(|m| (m.index, &m.action)).collect();
    assert_eq!(mapped.len(), 2, "{mapped:#?}");
    let XapiAction::Record(evidence) = mapped[0].1 else {
        panic!("{mapped:?}")
    };
    assert_eq!(mapped[0].0, 0);
    assert_eq!(
        (
            evidence.subject_id.as_str(),
            evidence.competency_id.as_str()
        ),
        ("emp-1042", "mentoring")
    );
    assert_eq!(evidence.level, 4.0);
    assert_eq!(evidence.source, Source::Artifact);
    assert_eq!(
        (
            evidence.source_system.as_str(),
            evidence.external_id.as_str()
        ),
        ("xapi", "0b3d4c1e-7a35-4a8e-9f0c-2f6f3c1d9a01")
    );
    assert_eq!(
        mapped[1],
        (
            7,
            &XapiAction::Void {
                voided_statement_id: "0b3d4c1e-7a35-4a8e-9f0c-2f6f3c1d9a02".into()
            }
        )
    );

    let skipped: Vec<(usize, &str)> = batch
        .skipped
        .iter()
        .map(|s| (s.index, s.reason.as_str()))
        .collect();
    let expected = [
        (1, "voided by statement #7"),
        (2, "same content: imported once"),
        (3, "different content"),
        (4, "actor is identified by mbox"),
        (5, "names no competency"),
        (6, "no result.score"),
    ];
    assert_eq!(skipped.len(), expected.len(), "{skipped:#?}");
    for ((index, reason), (want_index, want)) in skipped.iter().zip(expected) {
        assert_eq!(*index, want_index);
        assert!(reason.contains(want), "#{index}: {reason}");
        assert!(!reason.contains("someone"), "#{index}: {reason}");
    }
}

/// examples/statements.xapi.json: a Ladder id, a CASE URI and a CASE
/// `urn:uuid:` as objects, a raw score with an instructor and Ladder's
/// extensions, an xAPI 1.0.3 timestamp without an offset, and a void.
#[test]
fn the_sample_statements_all_map() {
    let text = std::fs::read("examples/statements.xapi.json").unwrap();
    let batch = map_statements(&text, &competencies(), &XapiOptions::default()).unwrap();
    assert!(batch.skipped.is_empty(), "{:?}", batch.skipped);
    let records: Vec<_> = batch
        .mapped
        .iter()
        .filter_map(|m| match &m.action {
            XapiAction::Record(e) => Some(e),
            XapiAction::Void { .. } => None,
        })
        .collect();
    let reviewed = records.iter().find(|e| e.rater_id == "mgr-77").unwrap();
    assert_eq!(reviewed.source, Source::Manager);
    assert_eq!(reviewed.confidence, 0.8);
    assert_eq!(reviewed.level, 1.0 + 4.0 * 18.0 / 24.0);
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].competency_id, "technical_depth");
    assert_eq!(
        records[2].observed_at.to_rfc3339(),
        "2026-02-20T09:00:00+00:00"
    );
    assert!(matches!(batch.mapped[3].action, XapiAction::Void { .. }));
}

/// Builtin framework's package, as JSON to spoil.
fn builtin_package() -> Value {
    serde_json::to_value(to_case(Document::builtin(), &options())).unwrap()
}

fn position(list: &Value, found: impl Fn(&Value) -> bool) -> usize {
    list.as_array().unwrap().iter().position(found).unwrap()
}

fn refusals(package: &Value) -> Vec<(String, String)> {
    match read_case(&serde_json::to_vec(package).unwrap()) {
        Err(CaseError::Refused(found)) => found
            .0
            .into_iter()
            .map(|v| (v.field, v.description))
            .collect(),
        other => panic!("not refused: {other:?}"),
    }
}

/// Every bad value of docs/standards.md's "All or nothing" table, in one
/// package: each is reported, at its place, in one answer.
#[test]
fn every_bad_value_of_a_package_is_refused_at_once() {
    let mut p = builtin_package();
    let items = p["CFItems"].clone();
    let role = position(&items, |i| i["CFItemType"] == "Role");
    p["CFItems"][role]["extensions"]["ladder:seniority"] = json!("high");
    let competency = position(&items, |i| i["CFItemType"] == "Competency");
    p["CFItems"][competency]["humanCodingScheme"] = json!("x".repeat(1025));
    let behaviour = position(&items, |i| i["CFItemType"] == "Behaviour");
    p["CFItems"][behaviour]["fullStatement"] = json!(" ");
    // A transition between two roles that are imported.
    let spoiled = &items[role]["identifier"];
    let transition = position(&p["CFAssociations"], |a| {
        a["associationType"] == "precedes"
            && a["originNodeURI"]["identifier"] != *spoiled
            && a["destinationNodeURI"]["identifier"] != *spoiled
    });
    p["CFAssociations"][transition]["extensions"]["ladder:transition"] = json!("sideways");
    let rubric = position(&p["CFRubrics"], |r| {
        r["extensions"]["ladder:role"] == "staff_engineer"
    });
    p["CFRubrics"][rubric]["CFRubricCriteria"][1]["CFItemURI"] =
        json!("urn:uuid:00000000-0000-4000-8000-00000000dead");
    p["CFRubrics"][0]["extensions"]["ladder:role"] = json!("nobody");
    let duplicate = items.as_array().unwrap().len();
    p["CFItems"].as_array_mut().unwrap().push(items[0].clone());
    let lonely = p["CFAssociations"].as_array().unwrap().len();
    p["CFAssociations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"identifier": "lonely", "associationType": "isChildOf", "originNodeURI": items[0]["uri"]}));

    let found = refusals(&p);
    let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
    for expected in [
        format!("CFItems[{duplicate}]"),
        format!("CFItems[{competency}].humanCodingScheme"),
        format!("CFAssociations[{lonely}]"),
        format!("CFItems[{role}].extensions.ladder:seniority"),
        format!("CFItems[{behaviour}]"),
        format!("CFAssociations[{transition}].extensions.ladder:transition"),
        format!("CFRubrics[{rubric}].CFRubricCriteria[1].CFItemURI"),
        "CFRubrics[0].extensions.ladder:role".to_string(),
    ] {
        assert!(
            fields.contains(&expected.as_str()),
            "{expected}: {found:#?}"
        );
    }
    assert_eq!(found.len(), 8, "{found:#?}");
    // Items are named by identifier and human coding scheme.
    let role_item = &items[role];
    let (_, description) = &found[fields
        .iter()
        .position(|f| f.ends_with("ladder:seniority"))
        .unwrap()];
    assert!(
        description.contains(role_item["identifier"].as_str().unwrap())
            && description.contains(role_item["humanCodingScheme"].as_str().unwrap()),
        "{description}"
    );
}

/// Entries of the wrong shape are answered on their own, every one of them.
#[test]
fn entries_of_the_wrong_shape_are_refused_together() {
    let mut p = builtin_package();
    p["CFItems"].as_array_mut().unwrap().push(json!(7));
    p["CFAssociations"][2]["sequenceNumber"] = json!("second");
    let n = p["CFItems"].as_array().unwrap().len() - 1;
    let found = refusals(&p);
    let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [format!("CFItems[{n}]").as_str(), "CFAssociations[2]"]
    );
}

/// Another tool's role (no `ladder:seniority`) and an item without text are
/// objects without a counterpart: noted, not refused.
#[test]
fn objects_without_a_counterpart_are_notes_not_refusals() {
    let package = json!({
        "CFDocument": {"identifier": "d", "title": "Roles of another tool"},
        "CFItems": [
            {"identifier": "r1", "fullStatement": "Data steward", "CFItemType": "Role"},
            {"identifier": "c1", "fullStatement": "  Data quality  ", "CFItemType": "Competency"},
            {"identifier": "c2", "CFItemType": "Competency"},
        ],
        "CFAssociations": [],
    });
    let imported = read_case(&serde_json::to_vec(&package).unwrap()).unwrap();
    assert_eq!(imported.document.competency_ids(), ["data_quality"]);
    assert_eq!(imported.document.competencies[0].name, "Data quality");
    let skipped: Vec<&str> = imported
        .notes
        .iter()
        .filter(|n| n.kind == NoteKind::Skipped)
        .map(|n| n.identifier.as_str())
        .collect();
    assert_eq!(skipped, ["c2", "r1"]);
    assert_eq!(imported.items.len(), 1);
    assert_eq!(imported.items[0].identifier.as_deref(), Some("c1"));
}
