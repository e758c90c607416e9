//! Where a process gets its models: a [`ModelFiles`] hands out the manifest, each model's verified
//! bytes and (optionally) its compiled plan. Implemented here for a directory ([`DirFiles`]) and for
//! the copy embedded at build time ([`EmbeddedFiles`]); the AWS adapter implements it for S3.

use crate::manifest::{verify_bytes, Manifest, ModelEntry};
use crate::{plan_cache, provision, ModelError};
use std::path::PathBuf;

/// A source of verified model bytes.
pub trait ModelFiles: Sync {
    /// The manifest describing the models of this source.
    fn manifest(&self) -> &Manifest;
    /// The bytes of `entry`'s file, verified against the manifest's sha256.
    fn model(&self, entry: &ModelEntry) -> Result<Vec<u8>, ModelError>;
    /// The compiled plan of `entry` (NNEF tar) if this source has an intact one (see
    /// [`plan_cache`]); `None` means "build from the ONNX".
    fn cached_plan(&self, entry: &ModelEntry) -> Option<Vec<u8>>;
    /// Where the models come from, for logs and /health ("dir:models", "s3://bucket/prefix/").
    fn origin(&self) -> String;
}

/// A models directory: `manifest.toml`, the model files and `.plans/`.
pub struct DirFiles {
    dir: PathBuf,
    manifest: Manifest,
}

impl DirFiles {
    /// Open `dir` (reads and validates its manifest).
    pub fn open(dir: impl Into<PathBuf>) -> Result<DirFiles, ModelError> {
        let dir = dir.into();
        let manifest = Manifest::load(&dir.join("manifest.toml"))?;
        Ok(DirFiles { dir, manifest })
    }
}

impl ModelFiles for DirFiles {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn model(&self, entry: &ModelEntry) -> Result<Vec<u8>, ModelError> {
        let path = self.dir.join(&entry.file);
        let bytes = std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ModelError::Missing {
                    name: entry.name.clone(),
                    tried: format!("{} (run `ekyc models fetch`)", path.display()),
                }
            } else {
                ModelError::Io {
                    path: path.clone(),
                    source: e,
                }
            }
        })?;
        provision::verify_file(&self.dir, entry, &bytes)?;
        Ok(bytes)
    }

    fn cached_plan(&self, entry: &ModelEntry) -> Option<Vec<u8>> {
        plan_cache::read(&self.dir, entry)
    }

    fn origin(&self) -> String {
        format!("dir:{}", self.dir.display())
    }
}

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_models.rs"));
}

/// The manifest and model files compiled into the binary (build with `EKYC_EMBED_MODELS=<dir>`);
/// every file is still verified against the manifest when loaded.
pub struct EmbeddedFiles {
    manifest: Manifest,
    files: &'static [(&'static str, &'static [u8])],
}

impl EmbeddedFiles {
    /// The embedded models, if this binary was built with some.
    pub fn get() -> Result<Option<EmbeddedFiles>, ModelError> {
        let Some((text, files)) = embedded::EMBEDDED else {
            return Ok(None);
        };
        let manifest = Manifest::from_toml(text, "embedded manifest.toml")?;
        Ok(Some(EmbeddedFiles { manifest, files }))
    }
}

impl ModelFiles for EmbeddedFiles {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn model(&self, e: &ModelEntry) -> Result<Vec<u8>, ModelError> {
        let bytes = self
            .files
            .iter()
            .find(|(name, _)| *name == e.file)
            .map(|(_, b)| b.to_vec())
            .ok_or_else(|| ModelError::Missing {
                name: e.name.clone(),
                tried: "embedded models (build with EKYC_EMBED_MODELS=models after `ekyc models fetch`)"
                    .into(),
            })?;
        verify_bytes(e, &bytes, "embedded")?;
        Ok(bytes)
    }

    fn cached_plan(&self, _: &ModelEntry) -> Option<Vec<u8>> {
        None
    }

    fn origin(&self) -> String {
        "embedded".into()
    }
}

/// The models of `dir`, or — when `dir` has no manifest and the binary embeds models — those.
pub fn dir_or_embedded(dir: impl Into<PathBuf>) -> Result<Box<dyn ModelFiles>, ModelError> {
    let dir = dir.into();
    if !dir.join("manifest.toml").exists() {
        if let Some(e) = EmbeddedFiles::get()? {
            return Ok(Box::new(e));
        }
    }
    Ok(Box::new(DirFiles::open(dir)?))
}
