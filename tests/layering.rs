//! The crate's top-level modules form layers: no module imports (through a
//! `crate::` path in code outside its tests) one that imports it back,
//! directly or through others, and the runtime (`llm`) imports nothing from
//! the rest of the crate. Doc comments may name any module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Modules a module's code names by `crate::<module>`, per top-level
/// module of `src/` (the binary's `main` and `cli` sit above everything).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let first = rel.components().next().unwrap().as_os_str();
            let top = first.to_str().unwrap().trim_end_matches(".rs").to_string();
            if ["main", "lib", "cli"].contains(&top.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            let deps = graph.entry(top.clone()).or_default();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let name: String = line[i + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != top {
                        deps.insert(name);
                    }
                }
            }
        }
    }
    graph
}

/// A path `from -> ... -> to` through `graph`, if there is one.
fn path(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![from.to_string()]];
    while let Some(route) = stack.pop() {
        let last = route.last().unwrap();
        for next in graph.get(last).into_iter().flatten() {
            if next == to {
                let mut done = route.clone();
                done.push(next.clone());
                return Some(done);
            }
            if seen.insert(next.clone()) {
                let mut longer = route.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = imports();
    assert!(graph.len() > 20, "read {} modules", graph.len());
    for (module, deps) in &graph {
        for dep in deps {
            if let Some(back) = path(&graph, dep, module) {
                panic!(
                    "{module} imports {dep}, which leads back: {}",
                    back.join(" -> ")
                );
            }
        }
    }
}

#[test]
fn the_runtime_imports_nothing_from_the_rest_of_the_crate() {
    let graph = imports();
    assert_eq!(graph.get("llm"), Some(&BTreeSet::new()), "llm imports");
}
