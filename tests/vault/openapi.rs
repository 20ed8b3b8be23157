//! `openapi.yaml` documents exactly the routed operations: every `/v2/<Name>` path in the file is
//! served, and every served operation has its path in the file.

use std::collections::BTreeSet;

/// The specification, by absolute path so the test needs no particular working directory.
const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");

/// The operation names of the `/v2/...` keys directly under the top-level `paths:` mapping.
///
/// A line scan, not a YAML parser: path keys sit at an indentation of two spaces under `paths:`,
/// which ends at the next top-level key. Panics on a duplicate key or a path without `post:`.
fn documented_operations(spec: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_paths = false;
    let mut lines = spec.lines();
    while let Some(line) = lines.next() {
        let content = line.trim_end();
        if content.is_empty() || content.trim_start().starts_with('#') {
            continue;
        }
        if !content.starts_with(' ') {
            in_paths = content == "paths:";
            continue;
        }
        let Some(key) = content.strip_prefix("  ").filter(|k| !k.starts_with(' ')).and_then(|k| k.strip_suffix(':'))
        else {
            continue;
        };
        if !in_paths {
            continue;
        }
        let key = key.trim_matches(|c| c == '\'' || c == '"');
        let Some(name) = key.strip_prefix("/v2/") else {
            continue;
        };
        assert!(!name.is_empty() && !name.contains('/'), "malformed /v2 path in openapi.yaml: {key}");
        let method = lines.by_ref().map(str::trim_end).find(|l| !l.trim_start().is_empty());
        assert!(
            method.is_some_and(|m| m.starts_with("    post:")),
            "{key} in openapi.yaml must start with its `post:` operation, found {method:?}"
        );
        assert!(names.insert(name.to_owned()), "{key} appears twice in openapi.yaml");
    }
    names
}

#[test]
fn openapi_documents_exactly_the_routed_operations() {
    let routed: BTreeSet<String> = bunker::app::operations()
        .iter()
        .chain(bunker::app::public_operations().iter())
        .map(|op| op.name.to_owned())
        .collect();
    let spec = std::fs::read_to_string(SPEC_PATH).expect("read openapi.yaml");
    let documented = documented_operations(&spec);
    assert!(!documented.is_empty(), "no /v2 paths found under `paths:` in openapi.yaml");

    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(undocumented.is_empty(), "routed but missing from openapi.yaml: {undocumented:?}");
    assert!(unrouted.is_empty(), "in openapi.yaml but not routed: {unrouted:?}");
}

#[test]
fn the_line_scan_reads_paths_only() {
    let spec = "openapi: 3.0.3\npaths:\n  /v2/A:\n    post:\n      summary: a\n\n  '/v2/B':\n    post: {}\n  /status:\n    get: {}\ncomponents:\n  /v2/C:\n    post: {}\n";
    let names: Vec<_> = documented_operations(spec).into_iter().collect();
    assert_eq!(names, ["A", "B"]);
}

crate::both!(the_vault_serves_its_openapi_document, |v| {
    let (status, text) = v.get_text("/openapi.yaml").await;
    assert_eq!(status.as_u16(), 200);
    let spec = std::fs::read_to_string(SPEC_PATH).expect("read openapi.yaml");
    assert_eq!(text, spec, "the served document is the repository's openapi.yaml");
    assert!(documented_operations(&text).contains("ConnectorDeleteUser"));
});
