//! Models from S3: the manifest and every active model downloaded concurrently into memory (no /tmp),
//! each verified against the manifest's sha256 before any plan is built; and `ekyc models push`.

use crate::{describe, fetch_err, http_status, normalize_prefix};
use aws_sdk_s3::primitives::ByteStream;
use ekyc_core::registry::selected;
use ekyc_core::ModelSelection;
use ekyc_models::manifest::{verify_bytes, Manifest, ModelEntry};
use ekyc_models::{plan_cache, provision, ModelError, ModelFiles};
use std::collections::HashMap;

/// Largest object accepted as a model or manifest.
const MAX_MODEL_BYTES: i64 = 64 << 20;

async fn get(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    name: &str,
) -> Result<Vec<u8>, ModelError> {
    let uri = format!("s3://{bucket}/{key}");
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| match http_status(&e) {
            Some(404) => ModelError::Missing {
                name: name.to_string(),
                tried: uri.clone(),
            },
            Some(403) => fetch_err(
                name,
                format!("access denied reading {uri} ({})", describe(&e)),
            ),
            _ => fetch_err(name, format!("reading {uri}: {}", describe(&e))),
        })?;
    if out.content_length().unwrap_or(0) > MAX_MODEL_BYTES {
        return Err(fetch_err(
            name,
            format!("{uri} is larger than {MAX_MODEL_BYTES} bytes"),
        ));
    }
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| fetch_err(name, format!("reading {uri}: {e}")))?;
    Ok(bytes.into_bytes().to_vec())
}

/// The manifest and the active models of an S3 prefix, downloaded into memory and verified.
pub struct S3Files {
    manifest: Manifest,
    files: HashMap<String, Vec<u8>>,
    plans: HashMap<String, Vec<u8>>,
    origin: String,
}

impl ModelFiles for S3Files {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn model(&self, e: &ModelEntry) -> Result<Vec<u8>, ModelError> {
        self.files
            .get(&e.name)
            .cloned()
            .ok_or_else(|| ModelError::Missing {
                name: e.name.clone(),
                tried: self.origin.clone(),
            })
    }

    fn cached_plan(&self, e: &ModelEntry) -> Option<Vec<u8>> {
        self.plans.get(&e.name).cloned()
    }

    fn origin(&self) -> String {
        self.origin.clone()
    }
}

impl S3Files {
    /// Download `<prefix>manifest.toml`, the models `selection` activates (all at once, each verified
    /// against the manifest) and their compiled plans when pushed.
    pub async fn download(
        client: &aws_sdk_s3::Client,
        bucket: &str,
        prefix: &str,
        selection: &ModelSelection,
    ) -> Result<S3Files, ModelError> {
        let prefix = normalize_prefix(prefix);
        let manifest_key = format!("{prefix}manifest.toml");
        let text = get(client, bucket, &manifest_key, "manifest").await?;
        let text = String::from_utf8(text).map_err(|_| {
            fetch_err(
                "manifest",
                format!("s3://{bucket}/{manifest_key} is not UTF-8"),
            )
        })?;
        let manifest = Manifest::from_toml(&text, &format!("s3://{bucket}/{manifest_key}"))?;
        let wanted = selected(&manifest, selection)?;

        // All downloads at once.
        let mut tasks = tokio::task::JoinSet::new();
        for e in &wanted {
            let (client, bucket, key, entry) = (
                client.clone(),
                bucket.to_string(),
                format!("{prefix}{}", e.file),
                (*e).clone(),
            );
            let origin = format!("s3://{bucket}/{prefix}");
            tasks.spawn(async move {
                let bytes = get(&client, &bucket, &key, &entry.name).await?;
                verify_bytes(&entry, &bytes, &origin)?;
                Ok::<_, ModelError>((entry.name.clone(), bytes))
            });
        }
        // Compiled plans (see models::plan_cache), when pushed: optional, so any failure here only
        // means building that plan from the ONNX.
        let mut plan_tasks = tokio::task::JoinSet::new();
        for e in &wanted {
            let (tar_rel, sidecar_rel) = plan_cache::relative_paths(e);
            let (client, bucket, entry) = (client.clone(), bucket.to_string(), (*e).clone());
            let (tar_key, sidecar_key) = (
                format!("{prefix}{tar_rel}"),
                format!("{prefix}{sidecar_rel}"),
            );
            plan_tasks.spawn(async move {
                let (tar, sidecar) = tokio::join!(
                    get(&client, &bucket, &tar_key, &entry.name),
                    get(&client, &bucket, &sidecar_key, &entry.name)
                );
                let origin = format!("s3://{bucket}/{tar_key}");
                let plan = match (tar, sidecar) {
                    (Ok(tar), Ok(sidecar)) => plan_cache::checked(
                        &entry,
                        tar,
                        &String::from_utf8_lossy(&sidecar),
                        &origin,
                    ),
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::info!(model = %entry.name, error = %e, "no cached plan in S3");
                        None
                    }
                };
                (entry.name, plan)
            });
        }
        let mut files: HashMap<String, Vec<u8>> = HashMap::new();
        while let Some(r) = tasks.join_next().await {
            let (name, bytes) = r.map_err(|_| ModelError::Panicked {
                name: "download".into(),
                what: "a model download task",
            })??;
            files.insert(name, bytes);
        }
        let mut plans: HashMap<String, Vec<u8>> = HashMap::new();
        while let Some(r) = plan_tasks.join_next().await {
            if let Ok((name, Some(tar))) = r {
                plans.insert(name, tar);
            }
        }
        Ok(S3Files {
            manifest,
            files,
            plans,
            origin: format!("s3://{bucket}/{prefix}"),
        })
    }
}

/// Upload the manifest and the provisioned model files (verified first) to `s3://bucket/prefix`.
pub async fn push(
    client: &aws_sdk_s3::Client,
    dir: &std::path::Path,
    bucket: &str,
    prefix: &str,
    names: &[String],
    all: bool,
) -> Result<Vec<String>, ModelError> {
    let prefix = normalize_prefix(prefix);
    let manifest = Manifest::load(&dir.join("manifest.toml"))?;
    let entries = provision::entries(&manifest, names, all)?;
    provision::verify_all(dir, &entries)?;
    let mut uploaded = Vec::new();
    let mut files: Vec<(String, std::path::PathBuf, &str)> = Vec::new();
    for e in &entries {
        files.push((
            format!("{prefix}{}", e.file),
            dir.join(&e.file),
            "application/octet-stream",
        ));
        // The compiled plan too, when `models fetch` made one and it is intact.
        if plan_cache::read(dir, e).is_some() {
            let (tar, sidecar) = plan_cache::relative_paths(e);
            files.push((
                format!("{prefix}{tar}"),
                dir.join(&tar),
                "application/x-tar",
            ));
            files.push((
                format!("{prefix}{sidecar}"),
                dir.join(&sidecar),
                "text/plain",
            ));
        }
    }
    // The manifest last: a reader never sees a manifest naming files not yet uploaded.
    files.push((
        format!("{prefix}manifest.toml"),
        dir.join("manifest.toml"),
        "application/toml",
    ));
    for (key, path, ctype) in files {
        let body = ByteStream::from_path(&path)
            .await
            .map_err(|e| ModelError::Store {
                key: key.clone(),
                message: format!("reading {}: {e}", path.display()),
            })?;
        client
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_type(ctype)
            .body(body)
            .send()
            .await
            .map_err(|e| ModelError::Store {
                key: key.clone(),
                message: format!("uploading to s3://{bucket}/{key}: {}", describe(&e)),
            })?;
        uploaded.push(format!("s3://{bucket}/{key}"));
    }
    Ok(uploaded)
}
