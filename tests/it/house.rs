//! The shape of `src/`, checked on every test run: layers point one way, and files stay small.
//!
//! The import check reads every file of `src/` with `syn` and resolves each path that starts
//! with `crate::`, `super::` or `self::` (in `use` trees, types and expressions) to the module
//! it names. A module and its own submodules are one unit; between *sibling* modules, at every
//! level (`store` and `metrics`, `http::admin` and `http::console`, …), the graph of "uses
//! something of" must have no cycle. That is the equivalent of `cargo modules dependencies
//! --acyclic`, without a tool to install. Test code (`#[cfg(test)]` modules inside a file) is
//! left out: a test module may use shared test helpers that use the module under test. Paths
//! inside macro calls are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// No file under `src/` is longer than this.
const MAX_LINES: usize = 700;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The module a file is, as path segments below the crate root (`src/http/mod.rs` is `http`).
fn module_of(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src_dir()).unwrap().with_extension("");
    let mut segments: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
        segments.pop();
    }
    segments
}

/// One use of another module's item: from which module, naming which path, where.
struct Reference {
    from: Vec<String>,
    to: Vec<String>,
    at: String,
}

struct Collector<'a> {
    file: &'a str,
    module: Vec<String>,
    modules: BTreeSet<Vec<String>>,
    references: Vec<Reference>,
}

impl Collector<'_> {
    /// `segments` as an absolute path, when it starts with `crate`, `super` or `self`.
    fn resolve(&self, segments: &[String]) -> Option<Vec<String>> {
        let mut base = self.module.clone();
        let mut rest = segments;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                base.clear();
                rest = &rest[1..];
            }
            Some("self") => rest = &rest[1..],
            Some("super") => {
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
            }
            _ => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn record(&mut self, segments: &[String], line: usize) {
        if let Some(to) = self.resolve(segments) {
            self.references.push(Reference {
                from: self.module.clone(),
                to,
                at: format!("{}:{line}", self.file),
            });
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) => {
                prefix.push(name.ident.to_string());
                self.record(&prefix.clone(), name.ident.span().start().line);
                prefix.pop();
            }
            syn::UseTree::Rename(rename) => {
                prefix.push(rename.ident.to_string());
                self.record(&prefix.clone(), rename.ident.span().start().line);
                prefix.pop();
            }
            syn::UseTree::Glob(glob) => {
                self.record(&prefix.clone(), glob.star_token.spans[0].start().line)
            }
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(first) = path.segments.first() {
            self.record(&segments, first.ident.span().start().line);
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if is_test_only(&item.attrs) {
            return; // tests may use shared test helpers that use the module under test
        }
        self.module.push(item.ident.to_string());
        self.modules.insert(self.module.clone());
        syn::visit::visit_item_mod(self, item);
        self.module.pop();
    }
}

/// `#[cfg(test)]`: test code, left out of the layering.
fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Ident>()
                .is_ok_and(|ident| ident == "test")
    })
}

/// Every reference between sibling modules, as `parent → (from child, to child) → where`.
type SiblingEdges = BTreeMap<Vec<String>, BTreeMap<(String, String), String>>;

fn sibling_edges() -> SiblingEdges {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    files.retain(|file| file.file_name().is_some_and(|name| name != "main.rs"));
    let mut modules: BTreeSet<Vec<String>> = files.iter().map(|file| module_of(file)).collect();
    let mut references = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let syntax = syn::parse_file(&text)
            .unwrap_or_else(|error| panic!("{} does not parse: {error}", file.display()));
        let name = file.strip_prefix(src_dir()).unwrap().display().to_string();
        let mut collector = Collector {
            file: &name,
            module: module_of(file),
            modules: BTreeSet::new(),
            references: Vec::new(),
        };
        collector.visit_file(&syntax);
        modules.append(&mut collector.modules);
        references.append(&mut collector.references);
    }
    let mut edges = SiblingEdges::new();
    for reference in references {
        let common = reference
            .from
            .iter()
            .zip(&reference.to)
            .take_while(|(a, b)| a == b)
            .count();
        let (Some(from), Some(to)) = (reference.from.get(common), reference.to.get(common)) else {
            continue; // within one module, or between a module and its own submodule
        };
        let parent = reference.from[..common].to_vec();
        let mut target = parent.clone();
        target.push(to.clone());
        if !modules.contains(&target) {
            continue; // an item of the common parent, not a sibling module
        }
        edges
            .entry(parent)
            .or_default()
            .entry((from.clone(), to.clone()))
            .or_insert(reference.at);
    }
    edges
}

/// A cycle in `edges` (from → to), as the modules along it, if there is one.
fn find_cycle(edges: &BTreeMap<(String, String), String>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from).or_default().push(to);
    }
    fn visit<'a>(
        node: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[start..].iter().map(|n| n.to_string()).collect();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for to in next.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(to, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in next.keys() {
        if let Some(cycle) = visit(node, &next, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn no_module_imports_from_a_module_that_imports_it_back() {
    let mut problems = Vec::new();
    for (parent, edges) in sibling_edges() {
        if let Some(cycle) = find_cycle(&edges) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|pair| {
                    let at = &edges[&(pair[0].clone(), pair[1].clone())];
                    format!("{} → {} ({at})", pair[0], pair[1])
                })
                .collect();
            problems.push(format!(
                "in crate::{}: {}",
                parent.join("::"),
                steps.join(", ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "import cycles between sibling modules:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let edges: BTreeMap<(String, String), String> = [
        (("config".into(), "store".into()), "a".into()),
        (("store".into(), "metrics".into()), "b".into()),
        (("metrics".into(), "config".into()), "c".into()),
        (("http".into(), "store".into()), "d".into()),
    ]
    .into_iter()
    .collect();
    let cycle = find_cycle(&edges).expect("a cycle of three");
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    assert_eq!(cycle.first(), cycle.last());
    let acyclic: BTreeMap<(String, String), String> =
        edges.into_iter().filter(|(_, at)| at != "c").collect();
    assert_eq!(find_cycle(&acyclic), None);
}

#[test]
fn the_import_check_reads_the_layers_of_this_crate() {
    // The check must see real edges, or an empty graph would pass it.
    let edges = sibling_edges();
    let top = &edges[&Vec::new()];
    assert!(top.contains_key(&("http".to_owned(), "store".to_owned())));
    assert!(top.contains_key(&("store".to_owned(), "domain".to_owned())));
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    long.sort();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines; split them along a seam:\n{}",
        long.join("\n")
    );
}
