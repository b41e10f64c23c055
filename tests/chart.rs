//! The container image definition and the Helm chart, checked offline:
//! `helm/ladder/ci/check.sh` lints the Dockerfile and the chart, renders the
//! chart with its default values and with `ci/full-values.yaml`, validates
//! every manifest strictly against the Kubernetes schemas and asserts the
//! properties a deployment relies on. Its tools come from PyPI into a virtual
//! environment under the target directory, made on the first run.

use std::process::Command;

#[test]
fn the_chart_renders_valid_manifests_and_the_values_schema_is_strict() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg("helm/ladder/ci/check.sh")
        .current_dir(repo)
        .output()
        .expect("running bash helm/ladder/ci/check.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "helm/ladder/ci/check.sh failed ({}):\n{stdout}{stderr}",
        out.status
    );
    assert!(
        stdout.contains("; 0 failed"),
        "no summary from the chart check:\n{stdout}{stderr}"
    );
}
