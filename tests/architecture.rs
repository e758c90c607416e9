//! The crate graph is the architecture: the core and the models crate must stay free of adapters.
//! Checked on Cargo.lock (every dependency edge the workspace resolves, all features and
//! dev-dependencies included), so it needs no network and no build.

use std::collections::{BTreeMap, BTreeSet};

/// Adapter crates the pure layers must never reach, directly or transitively.
const ADAPTERS: [&str; 7] = [
    "axum",
    "lambda_http",
    "lambda_runtime",
    "aws-sdk-s3",
    "aws-config",
    "clap",
    "hyper",
];

/// package name → names of its dependencies, from Cargo.lock.
fn lock_graph() -> BTreeMap<String, Vec<String>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock");
    let text = std::fs::read_to_string(&path).expect("Cargo.lock");
    let lock: toml::Value = toml::from_str(&text).expect("Cargo.lock is TOML");
    let mut g = BTreeMap::new();
    for p in lock["package"].as_array().expect("packages") {
        let name = p["name"].as_str().expect("name").to_string();
        let deps: Vec<String> = p
            .get("dependencies")
            .and_then(|d| d.as_array())
            .map(|d| {
                d.iter()
                    // "name" or "name version" when several versions are locked.
                    .filter_map(|v| v.as_str()?.split(' ').next().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        g.entry(name).or_insert_with(Vec::new).extend(deps);
    }
    g
}

fn closure(g: &BTreeMap<String, Vec<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.to_string()];
    while let Some(n) = stack.pop() {
        if seen.insert(n.clone()) {
            stack.extend(g.get(&n).into_iter().flatten().cloned());
        }
    }
    seen
}

#[test]
fn core_and_models_have_no_adapter_dependencies() {
    let g = lock_graph();
    for root in ["ekyc-core", "ekyc-models"] {
        assert!(g.contains_key(root), "{root} missing from Cargo.lock");
        let reach = closure(&g, root);
        let bad: Vec<&str> = ADAPTERS
            .iter()
            .copied()
            .filter(|a| reach.contains(*a))
            .collect();
        assert!(bad.is_empty(), "{root} depends on adapter crates {bad:?}");
        // Nor on the other workspace crates above it.
        for upper in ["ekyc-http", "ekyc-aws", "ekyc-eval", "ekyc-liveness"] {
            assert!(!reach.contains(upper), "{root} depends on {upper}");
        }
    }
    // The Lambdas' adapter crates do not link the evaluation code (plots, fonts).
    for adapter in ["ekyc-http", "ekyc-aws"] {
        let reach = closure(&g, adapter);
        for heavy in ["ekyc-eval", "plotters", "ttf-noto-sans", "indicatif"] {
            assert!(!reach.contains(heavy), "{adapter} depends on {heavy}");
        }
    }
}

#[test]
fn the_check_sees_real_edges() {
    // Guard against a check that cannot fail: the adapters do reach what the core must not.
    let g = lock_graph();
    assert!(closure(&g, "ekyc-http").contains("axum"));
    assert!(closure(&g, "ekyc-aws").contains("aws-sdk-s3"));
    assert!(closure(&g, "ekyc-liveness").contains("clap"));
    assert!(closure(&g, "ekyc-core").contains("ekyc-models"));
}
