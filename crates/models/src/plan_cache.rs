//! Compiled-plan cache: the graph passes that are the same on every start (tract's declutter, the
//! PReLU rewrite) run once at provisioning, and the result is stored as NNEF next to the models.
//! Loading a cached plan skips ONNX parsing, typing and two declutter passes (docs/performance.md
//! measures the saving); only tract's codegen pass runs at start.
//!
//! The cache is derived data and never trusted over the manifest: the ONNX file is still verified
//! against the manifest's sha256 at every load, the cache file name is keyed by that sha256, the
//! input shape, the tract version and the pass version, and the cache file's own sha256 is checked
//! against its sidecar. A missing, stale or damaged cache is ignored (with a warning) and the plan
//! is built from the ONNX as before — same result, bit for bit (tested).

use crate::manifest::{sha256_hex, ModelEntry};
use crate::plan::ParsedModel;
use crate::ModelError;
use std::path::{Path, PathBuf};

/// tract crates this cache format is tied to (a test checks it against Cargo.lock).
pub const TRACT_VERSION: &str = "0.23.9";
/// Bump when the load-time graph passes change.
pub const PASS_VERSION: u32 = 2;

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
            entry.input.tensor_shape(),
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
    let tar = ParsedModel::from_onnx(entry, onnx)?
        .apply_passes()?
        .to_nnef()?;
    let (path, sidecar) = paths(models_dir, entry);
    let dir = cache_dir(models_dir);
    std::fs::create_dir_all(&dir).map_err(|source| ModelError::Io {
        path: dir.clone(),
        source,
    })?;
    crate::provision::write_atomic(&path, &tar)?;
    crate::provision::write_atomic(&sidecar, sha256_hex(&tar).as_bytes())?;
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
