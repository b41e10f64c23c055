//! The JSON shapes of a CASE 1.1 package (the `CFPckg*` classes of the 1EdTech
//! REST/JSON binding). Every field is optional here because files written by
//! other tools leave out fields the specification requires; the import decides
//! what it can do without them. Numbers written as text and links written as a
//! bare URI are read too; keys this model does not know are ignored.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CfPackage {
    #[serde(rename = "CFDocument")]
    pub document: CfDocument,
    #[serde(rename = "CFItems")]
    pub items: Vec<CfItem>,
    #[serde(rename = "CFAssociations")]
    pub associations: Vec<CfAssociation>,
    #[serde(rename = "CFDefinitions")]
    pub definitions: Option<CfDefinitions>,
    #[serde(rename = "CFRubrics", skip_serializing_if = "Vec::is_empty")]
    pub rubrics: Vec<CfRubric>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CfDocument {
    #[serde(deserialize_with = "text")]
    pub identifier: Option<String>,
    #[serde(deserialize_with = "text")]
    pub uri: Option<String>,
    #[serde(deserialize_with = "text")]
    pub case_version: Option<String>,
    #[serde(deserialize_with = "text")]
    pub creator: Option<String>,
    #[serde(deserialize_with = "text")]
    pub title: Option<String>,
    #[serde(deserialize_with = "text")]
    pub last_change_date_time: Option<String>,
    #[serde(deserialize_with = "text")]
    pub description: Option<String>,
    #[serde(deserialize_with = "text")]
    pub version: Option<String>,
    #[serde(deserialize_with = "text")]
    pub adoption_status: Option<String>,
    pub extensions: Option<Value>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CfItem {
    #[serde(deserialize_with = "text")]
    pub identifier: Option<String>,
    #[serde(deserialize_with = "text")]
    pub uri: Option<String>,
    #[serde(deserialize_with = "text")]
    pub full_statement: Option<String>,
    #[serde(deserialize_with = "text")]
    pub abbreviated_statement: Option<String>,
    #[serde(rename = "CFItemType", deserialize_with = "text")]
    pub item_type: Option<String>,
    #[serde(rename = "CFItemTypeURI", deserialize_with = "link")]
    pub item_type_uri: Option<CfLink>,
    #[serde(deserialize_with = "text")]
    pub human_coding_scheme: Option<String>,
    #[serde(deserialize_with = "text")]
    pub list_enumeration: Option<String>,
    #[serde(deserialize_with = "text")]
    pub last_change_date_time: Option<String>,
    pub extensions: Option<Value>,
}

/// A `LinkURI` or `LinkGenURI`: a reference to another CASE object.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CfLink {
    #[serde(deserialize_with = "text")]
    pub title: Option<String>,
    #[serde(deserialize_with = "text")]
    pub identifier: Option<String>,
    #[serde(deserialize_with = "text")]
    pub uri: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CfAssociation {
    #[serde(deserialize_with = "text")]
    pub identifier: Option<String>,
    #[serde(deserialize_with = "text")]
    pub association_type: Option<String>,
    #[serde(deserialize_with = "integer")]
    pub sequence_number: Option<i64>,
    #[serde(deserialize_with = "text")]
    pub uri: Option<String>,
    #[serde(rename = "originNodeURI", deserialize_with = "link")]
    pub origin: Option<CfLink>,
    #[serde(rename = "destinationNodeURI", deserialize_with = "link")]
    pub destination: Option<CfLink>,
    #[serde(deserialize_with = "text")]
    pub last_change_date_time: Option<String>,
    pub extensions: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CfDefinitions {
    #[serde(rename = "CFItemTypes", default)]
    pub item_types: Vec<CfItemType>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CfItemType {
    #[serde(deserialize_with = "text")]
    pub identifier: Option<String>,
    #[serde(deserialize_with = "text")]
    pub uri: Option<String>,
    #[serde(deserialize_with = "text")]
    pub title: Option<String>,
    #[serde(deserialize_with = "text")]
    pub description: Option<String>,
    #[serde(deserialize_with = "text")]
    pub hierarchy_code: Option<String>,
    #[serde(deserialize_with = "text")]
    pub last_change_date_time: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CfRubric {
    #[serde(deserialize_with = "text")]
    pub identifier: Option<String>,
    #[serde(deserialize_with = "text")]
    pub uri: Option<String>,
    #[serde(deserialize_with = "text")]
    pub title: Option<String>,
    #[serde(deserialize_with = "text")]
    pub description: Option<String>,
    #[serde(deserialize_with = "text")]
    pub last_change_date_time: Option<String>,
    #[serde(rename = "CFRubricCriteria", deserialize_with = "list")]
    pub criteria: Vec<CfRubricCriterion>,
    pub extensions: Option<Value>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CfRubricCriterion {
    #[serde(deserialize_with = "text")]
    pub identifier: Option<String>,
    #[serde(deserialize_with = "text")]
    pub uri: Option<String>,
    #[serde(deserialize_with = "text")]
    pub category: Option<String>,
    #[serde(deserialize_with = "text")]
    pub description: Option<String>,
    #[serde(rename = "CFItemURI", deserialize_with = "link")]
    pub item: Option<CfLink>,
    #[serde(deserialize_with = "number")]
    pub weight: Option<f64>,
    #[serde(deserialize_with = "integer")]
    pub position: Option<i64>,
    #[serde(deserialize_with = "text")]
    pub rubric_id: Option<String>,
    #[serde(deserialize_with = "text")]
    pub last_change_date_time: Option<String>,
    #[serde(rename = "CFRubricCriterionLevels", deserialize_with = "list")]
    pub levels: Vec<CfRubricCriterionLevel>,
    pub extensions: Option<Value>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CfRubricCriterionLevel {
    #[serde(deserialize_with = "text")]
    pub identifier: Option<String>,
    #[serde(deserialize_with = "text")]
    pub uri: Option<String>,
    #[serde(deserialize_with = "text")]
    pub description: Option<String>,
    #[serde(deserialize_with = "text")]
    pub quality: Option<String>,
    #[serde(deserialize_with = "number")]
    pub score: Option<f64>,
    #[serde(deserialize_with = "text")]
    pub feedback: Option<String>,
    #[serde(deserialize_with = "integer")]
    pub position: Option<i64>,
    #[serde(deserialize_with = "text")]
    pub rubric_criterion_id: Option<String>,
    #[serde(deserialize_with = "text")]
    pub last_change_date_time: Option<String>,
    pub extensions: Option<Value>,
}

// Lenient readers: real packages write numbers as text ("sequenceNumber": "3"),
// codes as numbers ("listEnumeration": 3) and links as a bare URI.

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
        // A language map or a structured value: its first text, if any.
        Value::Object(map) => map.values().find_map(|v| v.as_str().map(str::to_string)),
        Value::Array(items) => items.iter().find_map(|v| v.as_str().map(str::to_string)),
    })
}

fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("expected a number")),
        Value::Null => Ok(None),
        _ => Err(serde::de::Error::custom("expected a number")),
    }
}

fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let whole = |f: f64| (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64);
    match Value::deserialize(d)? {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(Some(i)),
            None => n
                .as_f64()
                .and_then(whole)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("expected a whole number")),
        },
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(whole)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("expected a whole number")),
        Value::Null => Ok(None),
        _ => Err(serde::de::Error::custom("expected a whole number")),
    }
}

fn link<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CfLink>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(uri) => Ok(Some(CfLink {
            uri: Some(uri),
            ..CfLink::default()
        })),
        v @ Value::Object(_) => serde_json::from_value(v)
            .map(Some)
            .map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom(
            "expected a link object (title, identifier, uri)",
        )),
    }
}

fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        v => serde_json::from_value(v).map_err(serde::de::Error::custom),
    }
}
