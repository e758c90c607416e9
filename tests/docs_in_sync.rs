//! The quality gate's table (`ekyc_core::quality::LIMITS`) is the one source of each metric's
//! identity: the README's configuration table, the OpenAPI schema and template.yaml must agree
//! with it, the README must list every API error code and every setting (variable and flag).

use ekyc_core::quality::{Kind, LIMITS};

fn read(rel: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn readme_lists_every_quality_limit_with_its_flag_and_default() {
    let readme = read("README.md");
    for d in &LIMITS {
        let row = format!(
            "| `{}` | `--{}` | `{}` |",
            d.env,
            d.key.replace('_', "-"),
            d.default
        );
        assert!(readme.contains(&row), "README.md lacks the row {row}");
    }
}

#[test]
fn readme_lists_every_setting_with_its_flag() {
    use clap::Args;
    let readme = read("README.md");
    let cmd = ekyc_liveness::Settings::augment_args(clap::Command::new("settings"));
    let mut seen = 0;
    for arg in cmd.get_arguments() {
        let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let row = format!("| `{}` | `--{long}` |", env.to_string_lossy());
        assert!(
            readme.contains(&row),
            "README.md lacks a row starting {row}"
        );
        seen += 1;
    }
    assert!(seen > LIMITS.len(), "only {seen} settings found");
}

#[test]
fn openapi_documents_every_metric() {
    let doc = serde_json::to_value(ekyc_http::openapi::document()).expect("OpenAPI JSON");
    let props = &doc["components"]["schemas"]["QualityScores"]["properties"];
    assert!(props.is_object(), "QualityScores schema missing: {doc}");
    for d in &LIMITS {
        if let Kind::Check { metric, .. } = d.kind {
            assert!(
                props.get(metric.name()).is_some(),
                "QualityScores schema lacks {}",
                metric.name()
            );
        }
    }
}

#[test]
fn template_parameters_name_real_settings() {
    let template = read("template.yaml");
    let known: Vec<&str> = LIMITS.iter().map(|d| d.env).collect();
    let mut seen = 0;
    for line in template.lines() {
        let l = line.trim();
        // "EKYC_MIN_SHARPNESS: !If [...]" in the function's environment.
        let Some(name) = l.split(':').next().filter(|n| {
            (n.starts_with("EKYC_MIN_") || n.starts_with("EKYC_MAX_")) && !n.contains(' ')
        }) else {
            continue;
        };
        if name.starts_with("EKYC_MAX_IMAGE_") && !known.contains(&name) {
            continue; // input limits, not quality limits
        }
        if ["EKYC_MAX_BODY_BYTES", "EKYC_MAX_CONCURRENCY"].contains(&name) {
            continue;
        }
        assert!(
            known.contains(&name),
            "template.yaml sets unknown quality setting {name}"
        );
        seen += 1;
    }
    assert!(
        seen >= 3,
        "template.yaml quality parameters not found ({seen})"
    );
}

#[test]
fn readme_lists_every_error_code() {
    let readme = read("README.md");
    for k in ekyc_http::error::ErrorKind::ALL {
        let code = format!("`{}`", k.code());
        assert!(readme.contains(&code), "README.md does not document {code}");
    }
}
