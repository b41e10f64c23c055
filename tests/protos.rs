//! The protos, checked with buf (SPEC §6: `buf lint`-clean; from the first
//! release on, the API only grows): `buf lint` with the rules of `buf.yaml`,
//! and `buf breaking` against the last release's protos, kept as a buf image
//! in `proto/released/` (docs/architecture.md says how to cut it). To show
//! the check is not vacuous, it also runs on edited copies of the protos: an
//! added field and RPC must pass, a removed or renamed field must fail.
//!
//! buf comes from the npm registry (`@bufbuild/buf`, a pinned version) into
//! the Cargo target directory on the first run and is reused after; a run
//! that cannot install it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The buf release the checks run with.
const BUF_VERSION: &str = "1.75.0";

/// The last release's protos.
const BASELINE: &str = "proto/released/ladder-v1.binpb";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The buf binary, installed from npm under the target directory when it is
/// not there yet (one installer at a time: test runs share it).
fn buf() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| repo().join("target"), |t| repo().join(t));
    let dir = target.join(format!("buf-{BUF_VERSION}"));
    let bin = dir.join("node_modules/.bin/buf");
    std::fs::create_dir_all(&target).expect("creating the target directory");
    let lock = std::fs::File::create(target.join("buf.lock")).expect("the install lock");
    // SAFETY: flock on a file descriptor this function owns; released when
    // the file is dropped.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) },
        0
    );
    if !bin.exists() {
        eprintln!("protos: installing @bufbuild/buf@{BUF_VERSION} from npm into {dir:?}");
        let out = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--prefix",
            ])
            .arg(&dir)
            .arg(format!("@bufbuild/buf@{BUF_VERSION}"))
            .output()
            .expect("running npm (Node.js must be installed)");
        assert!(
            out.status.success() && bin.exists(),
            "npm could not install @bufbuild/buf@{BUF_VERSION}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    bin
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(buf())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running buf")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `buf breaking` of the protos in `dir` against the released image.
fn breaking(dir: &Path) -> Output {
    let against = repo().join(BASELINE);
    run(
        dir,
        &[
            "breaking",
            "--against",
            against.to_str().unwrap(),
            "--error-format",
            "json",
        ],
    )
}

/// A copy of `buf.yaml` and `proto/` with `edit` applied to `file`.
fn edited(file: &str, edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo().join("buf.yaml"), dir.path().join("buf.yaml")).unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(repo().join("proto"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let path = dir.path().join("proto/ladder/v1").join(file);
    let source = std::fs::read_to_string(&path).unwrap();
    let changed = edit(source.clone());
    assert_ne!(changed, source, "the edit of {file} changed nothing");
    std::fs::write(&path, changed).unwrap();
    dir
}

fn replace_once(source: String, from: &str, to: &str) -> String {
    assert_eq!(source.matches(from).count(), 1, "{from:?}");
    source.replacen(from, to, 1)
}

#[test]
fn the_protos_are_lint_clean() {
    let out = run(repo(), &["lint"]);
    assert!(out.status.success(), "buf lint:\n{}", text(&out));
}

#[test]
fn the_api_keeps_everything_the_last_release_had() {
    let out = breaking(repo());
    assert!(
        out.status.success(),
        "buf breaking against {BASELINE}:\n{}",
        text(&out)
    );
}

#[test]
fn additions_pass_the_breaking_check() {
    let grown = edited("rubric.proto", |s| {
        let s = replace_once(
            s,
            "  rpc ListTracks(ListTracksRequest) returns (ListTracksResponse);\n",
            "  rpc ListTracks(ListTracksRequest) returns (ListTracksResponse);\n  \
             rpc GetTrack(GetTrackRequest) returns (GetTrackResponse);\n",
        );
        let s = replace_once(
            s,
            "  int32 seniority = 9 [(google.api.field_behavior) = OPTIONAL];\n",
            "  int32 seniority = 9 [(google.api.field_behavior) = OPTIONAL];\n  \
             string org_unit = 10 [(google.api.field_behavior) = OPTIONAL];\n",
        );
        s + "\nmessage GetTrackRequest {\n  string track_id = 1 [(google.api.field_behavior) = REQUIRED];\n}\n\
             \nmessage GetTrackResponse {\n  Track track = 1 [(google.api.field_behavior) = OUTPUT_ONLY];\n}\n"
    });
    let out = breaking(grown.path());
    assert!(out.status.success(), "an addition refused:\n{}", text(&out));
    let out = run(grown.path(), &["lint"]);
    assert!(out.status.success(), "the grown protos:\n{}", text(&out));
}

#[test]
fn a_removed_or_renamed_field_fails_the_breaking_check() {
    let removed = edited("rubric.proto", |s| {
        replace_once(
            s,
            "  int32 seniority = 9 [(google.api.field_behavior) = OPTIONAL];\n",
            "",
        )
    });
    let out = breaking(removed.path());
    assert!(!out.status.success(), "a removed field passed");
    assert!(
        text(&out).contains("\"type\":\"FIELD_NO_DELETE\"") && text(&out).contains("seniority"),
        "{}",
        text(&out)
    );

    let renamed = edited("assessment.proto", |s| {
        replace_once(
            s,
            "  string subject_id = 1 [(google.api.field_behavior) = REQUIRED];\n  \
             // When set, only this competency.",
            "  string person_id = 1 [(google.api.field_behavior) = REQUIRED];\n  \
             // When set, only this competency.",
        )
    });
    let out = breaking(renamed.path());
    assert!(!out.status.success(), "a renamed field passed");
    assert!(
        text(&out).contains("\"type\":\"FIELD_SAME_NAME\"") && text(&out).contains("subject_id"),
        "{}",
        text(&out)
    );
}
