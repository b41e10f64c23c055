//! The bare query's baseline, measured by PostgreSQL's own client: `pgbench
//! -M prepared` at the benchmark's concurrency, over the socket the server
//! uses, as a child process whose reported rate is read back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ladder::app::embedded_pg;

use crate::Failure;

/// The bare query behind an assessment: one subject's evidence, as the
/// service's scoring statement reads it, with the tenant and the subject as
/// parameters. pgbench runs it ([`bare_query_script`]) and so does the
/// stack-alone server ([`crate::floor`]).
pub const BARE_QUERY: &str = "SELECT id, competency_id, level, source, confidence, observed_at \
     FROM evidence WHERE tenant_id = $1 AND subject_id = $2 AND observed_at <= now()";

/// [`BARE_QUERY`] as a pgbench script: the tenant and a random subject as
/// prepared parameters (`-D` sets `tenant`, `first` and `last`).
pub fn bare_query_script() -> String {
    let query = BARE_QUERY
        .replace("$1", ":tenant")
        .replace("$2", ":subject");
    format!("\\set subject random(:first, :last)\n{query};\n")
}

/// pgbench beside the `initdb` the embedded cluster uses, else on PATH.
pub fn find() -> PathBuf {
    embedded_pg::find_bin_dir(None)
        .map(|dir| dir.join("pgbench"))
        .ok()
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("pgbench"))
}

/// The service's scoring statement (`storage::scoring_inputs::READ`) as a
/// pgbench script: the tenant and a random subject as prepared parameters,
/// scoring as of now, a lock waited for at most 5 s. Run as the application
/// role (the statement sets its tenant itself), so that row-level security
/// binds it as it binds the server: how fast PostgreSQL alone answers what
/// every assessment asks.
pub fn scoring_statement() -> String {
    let statement = ladder::storage::scoring_inputs::READ
        .replace("$1", ":tenant")
        .replace("$2", ":subject")
        .replace("$3", "now()")
        .replace("$4", "'5000'");
    format!("\\set subject random(:first, :last)\n{statement};\n")
}

pub struct Run<'a> {
    pub pgbench: &'a Path,
    /// Where the script is written.
    pub script: &'a Path,
    pub database_url: &'a str,
    pub tenant: &'a str,
    pub subjects: (usize, usize),
    pub clients: usize,
    pub duration: Duration,
}

/// Runs `script` for `duration` from `clients` connections (one thread each)
/// and returns its transactions per second.
pub fn rate(run: &Run, script: &str) -> Result<f64, Failure> {
    std::fs::write(run.script, script)?;
    let mut command = Command::new(run.pgbench);
    let output = command
        .args(["--no-vacuum", "--protocol=prepared"])
        .arg(format!("--client={}", run.clients))
        .arg(format!("--jobs={}", run.clients))
        .arg(format!("--time={}", run.duration.as_secs().max(1)))
        .arg(format!("--define=tenant={}", run.tenant))
        .arg(format!("--define=first={}", run.subjects.0))
        .arg(format!("--define=last={}", run.subjects.1))
        .arg("--file")
        .arg(run.script)
        .arg(run.database_url)
        .output()
        .map_err(|e| format!("running {}: {e}", run.pgbench.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("pgbench failed ({}): {stderr}{stdout}", output.status).into());
    }
    tps(&stdout).ok_or_else(|| format!("no tps in pgbench's output:\n{stdout}").into())
}

/// `tps = 35123.456789 (without initial connection time)`.
fn tps(report: &str) -> Option<f64> {
    report
        .lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bare_query_script_binds_pgbench_variables() {
        assert_eq!(
            bare_query_script(),
            "\\set subject random(:first, :last)\n\
             SELECT id, competency_id, level, source, confidence, observed_at FROM evidence \
             WHERE tenant_id = :tenant AND subject_id = :subject AND observed_at <= now();\n"
        );
    }
}
