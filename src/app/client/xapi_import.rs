//! `ladder evidence import --format xapi FILE`: sends a file of xAPI
//! statements (a JSON array, an LRS answer or JSON Lines) to the server's
//! `ImportStatements` in batches and prints what became of each statement.
//! Ingest is idempotent on the statement id, so a file can be sent again.

use std::path::Path;

use serde_json::Value;

use crate::app::client::{Clients, call_failed};
use crate::app::error::AppError;
use crate::domain::standards::xapi;
use crate::proto::v1 as pb;
use crate::proto::v1::StatementOutcome as Outcome;
use crate::transport::MAX_DOCUMENT_BYTES;

/// What an import did, statement by statement.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub recorded: u64,
    pub duplicate: u64,
    pub voided: u64,
    pub nothing_to_void: u64,
    pub rejected: u64,
}

/// One line per statement: its place in the file (from 0), its id and what
/// became of it.
fn line(index: usize, result: &pb::StatementResult) -> String {
    let id = if result.statement_id.is_empty() {
        "(no id)"
    } else {
        &result.statement_id
    };
    let what = match Outcome::try_from(result.outcome) {
        Ok(Outcome::Recorded) => format!("recorded as evidence {}", result.evidence_id),
        Ok(Outcome::Duplicate) => format!("already recorded as evidence {}", result.evidence_id),
        Ok(Outcome::Voided) => format!("voided: evidence {} deleted", result.evidence_id),
        Ok(Outcome::NothingToVoid) => format!("nothing to void: {}", result.reason),
        _ => format!("rejected: {}", result.reason),
    };
    format!("statement #{index} {id}: {what}")
}

/// Statements in batches of at most `batch_size`, each a JSON array within
/// the server's size bound, with the file index of each statement.
fn batches(statements: Vec<(usize, Value)>, batch_size: usize) -> Vec<(Vec<usize>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut indices = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    let mut bytes = 2;
    for (index, statement) in statements {
        let text = statement.to_string();
        if !texts.is_empty()
            && (texts.len() >= batch_size || bytes + text.len() + 1 > MAX_DOCUMENT_BYTES)
        {
            out.push((
                std::mem::take(&mut indices),
                join(&std::mem::take(&mut texts)),
            ));
            bytes = 2;
        }
        bytes += text.len() + 1;
        indices.push(index);
        texts.push(text);
    }
    if !texts.is_empty() {
        out.push((indices, join(&texts)));
    }
    out
}

fn join(texts: &[String]) -> Vec<u8> {
    format!("[{}]", texts.join(",")).into_bytes()
}

/// Sends the file. Rejected statements make it an error (after the rest went
/// in), so that scripts notice.
pub async fn run(
    clients: &mut Clients,
    path: &Path,
    batch_size: usize,
    account_home_page: Option<String>,
) -> Result<Summary, AppError> {
    let bytes = std::fs::read(path).map_err(|source| AppError::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    let parsed = xapi::parse_statements(&bytes)
        .map_err(|e| AppError::Config(format!("{}: {e}", path.display())))?;
    let mut summary = Summary::default();
    let mut lines: Vec<(usize, String)> = Vec::new();
    let mut statements = Vec::new();
    for (index, statement) in parsed.into_iter().enumerate() {
        match statement {
            Ok(statement) => statements.push((index, statement)),
            Err(reason) => {
                summary.rejected += 1;
                lines.push((
                    index,
                    format!("statement #{index} (no id): rejected: {reason}"),
                ));
            }
        }
    }
    for (indices, batch) in batches(statements, batch_size.max(1)) {
        let request = pb::ImportStatementsRequest {
            statements: batch,
            account_home_page: account_home_page.clone().unwrap_or_default(),
        };
        let response = clients
            .xapi
            .import_statements(request)
            .await
            .map_err(call_failed)?
            .into_inner();
        for result in &response.results {
            let index = *indices.get(result.index as usize).ok_or_else(|| {
                AppError::Config("the server answered for a statement it was not sent".into())
            })?;
            let counter = match Outcome::try_from(result.outcome) {
                Ok(Outcome::Recorded) => &mut summary.recorded,
                Ok(Outcome::Duplicate) => &mut summary.duplicate,
                Ok(Outcome::Voided) => &mut summary.voided,
                Ok(Outcome::NothingToVoid) => &mut summary.nothing_to_void,
                _ => &mut summary.rejected,
            };
            *counter += 1;
            lines.push((index, line(index, result)));
        }
    }
    lines.sort_by_key(|(index, _)| *index);
    for (_, text) in &lines {
        println!("{text}");
    }
    let said = format!(
        "imported {}: {} recorded, {} already recorded, {} voided, {} nothing to void, {} rejected",
        path.display(),
        summary.recorded,
        summary.duplicate,
        summary.voided,
        summary.nothing_to_void,
        summary.rejected
    );
    if summary.rejected == 0 {
        eprintln!("{said}");
        Ok(summary)
    } else {
        Err(AppError::Config(format!(
            "{said}; the rejected statements are listed above with their reasons"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_the_file_index_of_every_statement() {
        let statements: Vec<(usize, Value)> = (0..5)
            .map(|i| (i * 2, serde_json::json!({ "n": i })))
            .collect();
        let sent = batches(statements, 2);
        let indices: Vec<Vec<usize>> = sent.iter().map(|(i, _)| i.clone()).collect();
        assert_eq!(indices, [vec![0, 2], vec![4, 6], vec![8]]);
        assert_eq!(sent[2].1, br#"[{"n":4}]"#);
    }
}
