//! The server's layering (ARCHITECTURE.md), checked from its imports: a subsystem of
//! `server/src` may import only those on a lower floor, and neither the subsystems nor the
//! files of one subsystem may import each other in a circle. An arrow X -> Y is a
//! `crate::Y` path in a non-test file of X (`#[cfg(test)]` items, comments and
//! `*tests.rs` files are skipped), as `../shared/tools/layers.py` counts them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Floors, lowest first. A subsystem imports only subsystems of lower floors.
const FLOORS: &[&[&str]] = &[
    &["names", "clock"],
    &["datasets", "auth"],
    &["lake"],
    // The two wings and the subsystems beside them, which never import each other.
    &[
        "ingest",
        "query",
        "maintenance",
        "readiness",
        "tenants",
        "lifecycle",
    ],
    // Runs SQL through the query wing.
    &["quality"],
    // The surface: requests in, statuses out (`error.rs` is its one status map).
    &["flight", "error", "ops"],
    // The HTTP doors and OTLP's gRPC services: they answer with the surface's status map.
    &["collector"],
    // Builds every layer's settings.
    &["config"],
    &["server"],
];

/// Subsystems counted as one (the status map belongs to the gRPC surface).
const MERGED: &[(&str, &str)] = &[("error", "flight")];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("server/src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && !path.to_string_lossy().ends_with("tests.rs")
        {
            out.push(path);
        }
    }
}

/// The text without comments and `#[cfg(test)]` items.
fn without_tests(text: &str) -> String {
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let (brace, semi) = (after.find('{'), after.find(';'));
        rest = match (brace, semi) {
            (_, Some(s)) if brace.is_none_or(|b| s < b) => &after[s + 1..],
            (Some(b), _) => {
                let mut depth = 0;
                let mut end = after.len();
                for (i, c) in after[b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                &after[end..]
            }
            _ => "",
        };
    }
    out.push_str(rest);
    out
}

/// Every `crate::a::b::...`, `super::...` and `self::...` path in `text`, as segments.
fn paths(text: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let mut end = at;
            while end < bytes.len()
                && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b':')
            {
                end += 1;
            }
            let segments: Vec<String> = text[at..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            found.push(segments);
        }
    }
    found
}

/// `lake/stores/mod.rs` → `["lake", "stores"]`; `auth.rs` → `["auth"]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn merged(subsystem: &str) -> &str {
    MERGED
        .iter()
        .find(|(from, _)| *from == subsystem)
        .map_or(subsystem, |(_, into)| into)
}

fn floor(subsystem: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&subsystem))
}

/// Strongly connected components of more than one node (Tarjan).
fn circles<N: Ord + Clone>(edges: &BTreeSet<(N, N)>) -> Vec<Vec<N>> {
    struct Walk<N> {
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        stack: Vec<N>,
        found: Vec<Vec<N>>,
    }
    fn visit<N: Ord + Clone>(v: &N, edges: &BTreeSet<(N, N)>, w: &mut Walk<N>) {
        let n = w.index.len();
        w.index.insert(v.clone(), n);
        w.low.insert(v.clone(), n);
        w.stack.push(v.clone());
        for (_, to) in edges.iter().filter(|(from, _)| from == v) {
            if !w.index.contains_key(to) {
                visit(to, edges, w);
                let low = w.low[v].min(w.low[to]);
                w.low.insert(v.clone(), low);
            } else if w.stack.contains(to) {
                let low = w.low[v].min(w.index[to]);
                w.low.insert(v.clone(), low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut component = Vec::new();
            while let Some(top) = w.stack.pop() {
                let done = &top == v;
                component.push(top);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                w.found.push(component);
            }
        }
    }
    let mut walk = Walk {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    let nodes: BTreeSet<N> = edges
        .iter()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    for node in &nodes {
        if !walk.index.contains_key(node) {
            visit(node, edges, &mut walk);
        }
    }
    walk.found
}

/// An import between two files of one subsystem, as module paths.
type FileEdge = (Vec<String>, Vec<String>);

struct Imports {
    /// (from, to, where) between subsystems.
    arrows: Vec<(String, String, String)>,
    /// Per subsystem: module → module edges between its own files.
    file_edges: BTreeMap<String, BTreeSet<FileEdge>>,
}

fn read_imports() -> Imports {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let modules: BTreeSet<Vec<String>> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(&root).expect("under src")))
        .collect();
    let subsystems: BTreeSet<String> = modules
        .iter()
        .map(|m| m[0].clone())
        .filter(|s| s != "lib" && s != "main")
        .collect();
    let mut arrows = Vec::new();
    let mut file_edges: BTreeMap<String, BTreeSet<_>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&root).expect("under src");
        let me = module_of(rel);
        if !subsystems.contains(&me[0]) {
            continue;
        }
        let text = without_tests(&std::fs::read_to_string(file).expect("source file"));
        for path in paths(&text) {
            let full: Vec<String> = if path[0] == "crate" {
                path[1..].to_vec()
            } else {
                let mut base = me.clone();
                let mut rest = path.as_slice();
                while let Some(first) = rest.first() {
                    match first.as_str() {
                        "super" => {
                            base.pop();
                        }
                        "self" => {}
                        _ => break,
                    }
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                base
            };
            let Some(target) = full.first() else { continue };
            if path[0] == "crate" && subsystems.contains(target) && *target != me[0] {
                arrows.push((me[0].clone(), target.clone(), rel.display().to_string()));
            }
            if full[0] == me[0] {
                let to = (1..=full.len())
                    .rev()
                    .map(|k| full[..k].to_vec())
                    .find(|m| modules.contains(m));
                if let Some(to) = to.filter(|to| *to != me) {
                    file_edges
                        .entry(me[0].clone())
                        .or_default()
                        .insert((me.clone(), to));
                }
            }
        }
    }
    Imports { arrows, file_edges }
}

#[test]
fn every_import_points_down_a_floor() {
    let imports = read_imports();
    let mut wrong = Vec::new();
    for (from, to, at) in &imports.arrows {
        let (from_m, to_m) = (merged(from), merged(to));
        if from_m == to_m {
            continue;
        }
        match (floor(from), floor(to)) {
            (Some(a), Some(b)) if b < a => {}
            (None, _) | (_, None) => wrong.push(format!(
                "{from} -> {to} ({at}): a subsystem with no floor; add it to FLOORS here and to ARCHITECTURE.md"
            )),
            _ => wrong.push(format!("{from} -> {to} ({at})")),
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports that point sideways or up (ARCHITECTURE.md says where things go):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_subsystem_or_file_imports_in_a_circle() {
    let imports = read_imports();
    let edges: BTreeSet<(String, String)> = imports
        .arrows
        .iter()
        .map(|(a, b, _)| (merged(a).to_string(), merged(b).to_string()))
        .filter(|(a, b)| a != b)
        .collect();
    let mut found: Vec<String> = circles(&edges)
        .into_iter()
        .map(|c| format!("subsystems: {}", c.join(", ")))
        .collect();
    for (subsystem, edges) in &imports.file_edges {
        for circle in circles(edges) {
            let files: Vec<String> = circle.iter().map(|m| m.join("/")).collect();
            found.push(format!("files of {subsystem}: {}", files.join(", ")));
        }
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_a_circle_and_an_upward_arrow() {
    let edges: BTreeSet<(&str, &str)> = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]
        .into_iter()
        .collect();
    assert_eq!(circles(&edges), vec![vec!["a", "b", "c"]]);
    assert!(floor("lake") < floor("config"), "lake -> config points up");
    let text =
        "use crate::lake::X;\n#[cfg(test)]\nmod tests { use crate::config::Y; }\n// crate::query\n";
    let found: Vec<String> = paths(&without_tests(text))
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(found, ["crate::lake::X"]);
}
