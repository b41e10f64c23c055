//! The shape of a framework file, checked on the parsed YAML before it is
//! read into a [`Document`](super::Document): every missing field, unknown
//! field and value of the wrong type is found in one pass (serde stops at
//! the first), and the value is mended so that the file's meaning can be
//! checked too, and all its problems reported at once.

use serde_yaml_ng::{Mapping, Value};

use crate::domain::validation::Violations;

/// What a value of the file must be.
enum Shape {
    Text,
    /// A whole number in the range, said in words.
    Whole(i64, i64, &'static str),
    Number,
    Boolean,
    OneOf(&'static [&'static str]),
    List(&'static Shape),
    Map(&'static [Field]),
}

struct Field {
    name: &'static str,
    shape: Shape,
    required: bool,
}

const fn required(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        required: true,
    }
}

const TEXT_LIST: Shape = Shape::List(&Shape::Text);

const TRACK: Shape = Shape::Map(&[
    required("id", Shape::Text),
    required("name", Shape::Text),
    required("description", Shape::Text),
]);

const LEVEL: Shape = Shape::Map(&[
    required("level", Shape::Whole(0, 255, "a whole number 1-5")),
    required("title", Shape::Text),
    required("description", Shape::Text),
    required("behaviours", TEXT_LIST),
]);

const COMPETENCY: Shape = Shape::Map(&[
    required("id", Shape::Text),
    required("name", Shape::Text),
    required("description", Shape::Text),
    required("levels", Shape::List(&LEVEL)),
]);

const TRANSITION: Shape = Shape::Map(&[
    required("to", Shape::Text),
    required("kind", Shape::OneOf(&["promotion", "lateral"])),
]);

const EXPECTATION: Shape = Shape::Map(&[
    required("competency", Shape::Text),
    required("expected_level", Shape::Whole(0, 255, "a whole number 1-5")),
    required("weight", Shape::Number),
    required("critical", Shape::Boolean),
    required("development_actions", TEXT_LIST),
]);

const RUBRIC: Shape = Shape::Map(&[required("competencies", Shape::List(&EXPECTATION))]);

const ROLE: Shape = Shape::Map(&[
    required("id", Shape::Text),
    required("name", Shape::Text),
    required("track", Shape::Text),
    required(
        "seniority",
        Shape::Whole(i32::MIN as i64, i32::MAX as i64, "a whole number 0-1000"),
    ),
    required("description", Shape::Text),
    required("transitions", Shape::List(&TRANSITION)),
    Field {
        name: "rubric",
        shape: RUBRIC,
        required: false,
    },
]);

const DOCUMENT: Shape = Shape::Map(&[
    required("format", Shape::Text),
    Field {
        name: "mode",
        shape: Shape::OneOf(&["merge", "complete"]),
        required: false,
    },
    required("tracks", Shape::List(&TRACK)),
    required("competencies", Shape::List(&COMPETENCY)),
    required("roles", Shape::List(&ROLE)),
]);

/// Every shape problem of `value` (a whole file), each at its path, and
/// the paths of the values mended in `value` (their meaning is not checked
/// again: a mended `track: ""` would only repeat the problem).
pub fn check(value: &mut Value) -> (Violations, Vec<String>) {
    let mut found = Violations::new();
    let mut mended = Vec::new();
    check_value(&DOCUMENT, value, "", &mut found, &mut mended);
    (found, mended)
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// What a value is, as a person says it.
fn found(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the text {s:?}"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping (lines of `key: value`)".into(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

/// What a shape is, as a person says it.
fn expected(shape: &Shape) -> String {
    match shape {
        Shape::Text => "text".into(),
        Shape::Whole(_, _, words) => (*words).into(),
        Shape::Number => "a number".into(),
        Shape::Boolean => "true or false".into(),
        Shape::OneOf(options) => format!("one of {}", options.join(", ")),
        Shape::List(_) => "a list (lines starting with \"- \", or [] for none)".into(),
        Shape::Map(_) => "a mapping (lines of `key: value`)".into(),
    }
}

/// A value of the shape, in place of a missing or mistyped one.
fn stand_in(shape: &Shape) -> Value {
    match shape {
        Shape::Text => Value::String(String::new()),
        Shape::Whole(..) => Value::Number(0.into()),
        Shape::Number => Value::Number(1.into()),
        Shape::Boolean => Value::Bool(false),
        Shape::OneOf(options) => Value::String(options[0].into()),
        Shape::List(_) => Value::Sequence(Vec::new()),
        Shape::Map(fields) => {
            let mut map = Mapping::new();
            for f in fields.iter().filter(|f| f.required) {
                map.insert(Value::String(f.name.into()), stand_in(&f.shape));
            }
            Value::Mapping(map)
        }
    }
}

fn check_value(
    shape: &Shape,
    value: &mut Value,
    path: &str,
    problems: &mut Violations,
    mended: &mut Vec<String>,
) {
    let fits = match (shape, &mut *value) {
        (Shape::Text, Value::String(_)) | (Shape::Boolean, Value::Bool(_)) => true,
        (Shape::Number, Value::Number(n)) => n.as_f64().is_some(),
        (Shape::Whole(low, high, _), Value::Number(n)) => {
            n.as_i64().is_some_and(|n| (*low..=*high).contains(&n))
        }
        (Shape::OneOf(options), Value::String(s)) => options.contains(&s.as_str()),
        (Shape::List(item), Value::Sequence(items)) => {
            for (i, v) in items.iter_mut().enumerate() {
                check_value(item, v, &format!("{path}[{i}]"), problems, mended);
            }
            true
        }
        (Shape::Map(fields), Value::Mapping(map)) => {
            check_fields(fields, map, path, problems, mended);
            true
        }
        _ => false,
    };
    if !fits {
        problems.add(
            path,
            format!("expected {}, found {}", expected(shape), found(value)),
        );
        *value = stand_in(shape);
        mended.push(path.to_string());
    }
}

fn check_fields(
    fields: &[Field],
    map: &mut Mapping,
    path: &str,
    problems: &mut Violations,
    mended: &mut Vec<String>,
) {
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    let unknown: Vec<Value> = map
        .keys()
        .filter(|k| !k.as_str().is_some_and(|k| names.contains(&k)))
        .cloned()
        .collect();
    for key in unknown {
        let said = key.as_str().map_or_else(|| found(&key), str::to_string);
        let closest = super::document::closest(&said, names.iter().copied())
            .map(|d| format!(" (did you mean {d:?}?)"))
            .unwrap_or_default();
        problems.add(
            join(path, &said),
            format!(
                "unknown field {said:?}{closest}: expected one of {}; a key indented \
                 less or more than its item's other keys lands in the wrong item",
                names.join(", ")
            ),
        );
        map.remove(&key);
    }
    for f in fields {
        let at = join(path, f.name);
        match map.get_mut(f.name) {
            Some(v) => check_value(&f.shape, v, &at, problems, mended),
            None if f.required => {
                problems.add(
                    &at,
                    format!(
                        "missing field {:?} ({}): add `{}: ...` to this item, lined up with \
                         its other keys",
                        f.name,
                        expected(&f.shape),
                        f.name
                    ),
                );
                map.insert(Value::String(f.name.into()), stand_in(&f.shape));
                mended.push(at);
            }
            None => {}
        }
    }
}
