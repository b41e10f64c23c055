//! Writes the demo organisation (see `org.rs`) to `examples/demo/`:
//!
//! ```sh
//! cargo run --example demo_org                       # the committed files, seed 12
//! cargo run --example demo_org -- --seed 7 --out /tmp/demo
//! ```

mod org;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut seed = org::DEFAULT_SEED;
    let mut out = PathBuf::from("examples/demo");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--seed", Some(value)) if value.parse::<u64>().is_ok() => {
                seed = value.parse().expect("checked above");
            }
            ("--out", Some(value)) => out = PathBuf::from(value),
            _ => {
                eprintln!("usage: demo_org [--seed N] [--out DIR]");
                return ExitCode::FAILURE;
            }
        }
    }
    let demo = org::generate(seed);
    let written = std::fs::create_dir_all(&out).and_then(|()| {
        std::fs::write(out.join("evidence.csv"), &demo.evidence_csv)?;
        std::fs::write(out.join("subjects.csv"), &demo.subjects_csv)?;
        std::fs::write(out.join("raters.csv"), &demo.raters_csv)?;
        std::fs::write(out.join("labels.csv"), &demo.labels_csv)
    });
    if let Err(e) = written {
        eprintln!("demo_org: writing {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    eprintln!(
        "demo_org: wrote {} evidence rows for {} people to {}",
        demo.evidence_csv.lines().count() - 1,
        demo.subjects_csv.lines().count() - 1,
        out.display()
    );
    ExitCode::SUCCESS
}
