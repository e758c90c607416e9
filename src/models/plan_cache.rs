//! Compiled-plan cache: the graph passes that are the same on every start (tract's declutter, the
//! PReLU rewrite) run once at provisioning, and the result is stored as NNEF next to the models.
//! Loading a cached plan skips ONNX parsing, typing and two declutter passes (26–38 % less CPU
//! per model, docs/performance.md); only tract's codegen pass runs at start.
//!
//! The cache is derived data and never trusted over the manifest: the ONNX file is still verified
//! against the manifest's sha256 at every load, the cache file name is keyed by that sha256, the
//! input shape, the tract version and the pass version, and the cache file's own sha256 is checked
//! against its sidecar. A missing, stale or damaged cache is ignored (with a warning) and the plan
//! is built from the ONNX as before — same result, bit for bit (tested).

use super::manifest::{sha256_hex, ModelEntry};
use super::{input_shape, Plan};
use crate::error::ModelError;
use std::path::{Path, PathBuf};

/// tract crates this cache format is tied to (a test checks it against Cargo.lock).
pub const TRACT_VERSION: &str = "0.23.9";
/// Bump when the load-time graph passes change.
pub const PASS_VERSION: u32 = 1;

/// Directory of cached plans inside the models directory.
pub fn cache_dir(models_dir: &Path) -> PathBuf {
    models_dir.join(".plans")
}

/// The cache file and its sha256 sidecar for `entry`.
pub fn paths(models_dir: &Path, entry: &ModelEntry) -> (PathBuf, PathBuf) {
    let key = sha256_hex(
        format!(
            "{}|{:?}|tract {}|passes {}",
            entry.sha256.to_ascii_lowercase(),
            input_shape(entry),
            TRACT_VERSION,
            PASS_VERSION
        )
        .as_bytes(),
    );
    let base = cache_dir(models_dir).join(format!("{}.{}.nnef.tar", entry.name, &key[..16]));
    let sidecar = base.with_extension("tar.sha256");
    (base, sidecar)
}

/// Build the cached plan of `entry` from its verified ONNX bytes and write it (atomically).
/// Returns the cache path and its size in bytes.
pub fn write(
    models_dir: &Path,
    entry: &ModelEntry,
    onnx: &[u8],
) -> Result<(PathBuf, usize), ModelError> {
    let tar = Plan::passes_to_nnef(entry, onnx)?;
    let (path, sidecar) = paths(models_dir, entry);
    let io = |p: &Path, source: std::io::Error| ModelError::Io {
        path: p.to_path_buf(),
        source,
    };
    let dir = cache_dir(models_dir);
    std::fs::create_dir_all(&dir).map_err(|s| io(&dir, s))?;
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, &tar).map_err(|s| io(&tmp, s))?;
    std::fs::rename(&tmp, &path).map_err(|s| io(&path, s))?;
    std::fs::write(&sidecar, sha256_hex(&tar)).map_err(|s| io(&sidecar, s))?;
    Ok((path, tar.len()))
}

/// The cached plan bytes of `entry`, if present and intact; `None` (with the reason logged) if not.
pub fn read(models_dir: &Path, entry: &ModelEntry) -> Option<Vec<u8>> {
    let (path, sidecar) = paths(models_dir, entry);
    let bytes = std::fs::read(&path).ok()?;
    let recorded = std::fs::read_to_string(&sidecar).unwrap_or_default();
    checked(entry, bytes, &recorded, &path.display().to_string())
}

/// The cache file name of `entry` and of its sidecar, relative to the models directory (the same
/// layout is used under an S3 model prefix).
pub fn relative_paths(entry: &ModelEntry) -> (String, String) {
    let (tar, sidecar) = paths(Path::new(""), entry);
    (
        tar.to_string_lossy().into_owned(),
        sidecar.to_string_lossy().into_owned(),
    )
}

/// `bytes` if their sha256 is the one `recorded` in the sidecar; `None` (logged) if not.
pub fn checked(
    entry: &ModelEntry,
    bytes: Vec<u8>,
    recorded: &str,
    origin: &str,
) -> Option<Vec<u8>> {
    if recorded.trim().eq_ignore_ascii_case(&sha256_hex(&bytes)) {
        Some(bytes)
    } else {
        tracing::warn!(model = %entry.name, origin,
            "cached plan does not match its sha256 sidecar; building from ONNX");
        None
    }
}
