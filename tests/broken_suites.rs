//! The broken-suite corpus: every file under `tests/broken/` must fail validation with
//! exactly the diagnostics in its snapshot (rustc-style text, so positions are visible).

use std::path::Path;

use kitt::suite::diagnostics::render_human;
use kitt::suite::validate::{Unset, validate_file};

#[test]
fn every_broken_suite_gets_its_diagnostics() {
    let registry = kitt::assemble::builtins();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    insta::glob!("broken/*.yaml", |path| {
        count += 1;
        let relative = path.strip_prefix(root).unwrap();
        let v = validate_file(relative, &registry, &[], Unset::Allowed);
        assert!(
            v.has_errors(),
            "{} validated but must not",
            relative.display()
        );
        assert!(
            v.diagnostics
                .iter()
                .all(|d| d.location.is_some() || d.code == "param"),
            "{}: every diagnostic must point into a file",
            relative.display()
        );
        insta::assert_snapshot!(render_human(&v.diagnostics, &v.workspace.sources));
    });
    assert!(count >= 40, "the corpus has {count} files, fewer than 40");
}
