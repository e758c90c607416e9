//! Optional model embedding. With `EKYC_EMBED_MODELS=<models dir>` at build time, the manifest and
//! every model file it names that is present in that directory are compiled into the binary, and
//! used at run time when neither EKYC_MODEL_BUCKET nor a models directory is available (a Lambda
//! zip built by SAM holds only the bootstrap binary). Every embedded file is still verified against
//! the manifest's sha256 when loaded. Without the variable nothing is embedded.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=EKYC_EMBED_MODELS");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("embedded_models.rs");
    let code = match std::env::var("EKYC_EMBED_MODELS") {
        Ok(dir) if !dir.is_empty() => embed(PathBuf::from(dir)),
        _ => "pub(super) static EMBEDDED: Option<Embedded> = None;\n".to_string(),
    };
    // (manifest text, [(file name, bytes)])
    let code = format!(
        "pub(super) type Embedded = (&'static str, &'static [(&'static str, &'static [u8])]);\n{code}"
    );
    std::fs::write(out, code).expect("write embedded_models.rs");
}

fn embed(dir: PathBuf) -> String {
    let dir = dir
        .canonicalize()
        .unwrap_or_else(|e| panic!("EKYC_EMBED_MODELS={}: {e}", dir.display()));
    let manifest = dir.join("manifest.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    println!("cargo:rerun-if-changed={}", manifest.display());
    let mut files = String::new();
    for line in text.lines() {
        let l = line.trim();
        let Some(rest) = l.strip_prefix("file") else {
            continue;
        };
        let Some(name) = rest
            .trim_start()
            .strip_prefix('=')
            .map(|v| v.trim().trim_matches('"'))
        else {
            continue;
        };
        let path = dir.join(name);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push_str(&format!(
                "({name:?}, include_bytes!({:?}) as &[u8]),\n",
                path.display().to_string()
            ));
        }
    }
    format!(
        "pub(super) static EMBEDDED: Option<Embedded> = Some((include_str!({:?}), &[\n{files}]));\n",
        manifest.display().to_string()
    )
}
