//! `ekyc models`: provision, verify, push and list the manifest's models.

use anyhow::Result;
use clap::Subcommand;
use ekyc_liveness::Settings;
use ekyc_models::manifest::{sha256_hex, Manifest};
use ekyc_models::{plan_cache, provision};
use std::process::ExitCode;

#[derive(Subcommand)]
pub(crate) enum ModelsCmd {
    /// Fill the models directory: present file → mirror (EKYC_MODEL_MIRROR) → URL → recipe; verify sha256;
    /// then write each model's compiled plan (models/.plans/, see README "Models").
    Fetch {
        /// Model names (default: the manifest's default set).
        names: Vec<String>,
        /// Every model in the manifest.
        #[arg(long)]
        all: bool,
        /// Never use the network (URL and recipe sources).
        #[arg(long)]
        offline: bool,
        #[command(flatten)]
        config: Settings,
    },
    /// Verify the provisioned files against the manifest.
    Verify {
        names: Vec<String>,
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        config: Settings,
    },
    /// Upload the manifest, the provisioned models and their compiled plans to S3 (s3://bucket/prefix),
    /// for EKYC_MODEL_BUCKET.
    Push {
        /// Destination, e.g. s3://my-bucket/models
        destination: String,
        names: Vec<String>,
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        config: Settings,
    },
    /// List the manifest's models.
    List {
        #[command(flatten)]
        config: Settings,
    },
}

pub(crate) fn run(cmd: ModelsCmd) -> Result<ExitCode> {
    match cmd {
        ModelsCmd::Fetch {
            names,
            all,
            offline,
            config,
        } => {
            let dir = &config.models.models_dir;
            let manifest = Manifest::load(&dir.join("manifest.toml"))?;
            let entries = provision::entries(&manifest, &names, all)?;
            for e in &entries {
                let origin =
                    provision::fetch_one(dir, e, config.models.model_mirror.as_deref(), !offline)?;
                // fetch_one verified the file; print the hash of the file as provisioned (a recipe
                // build differs from the manifest's).
                let bytes = std::fs::read(dir.join(&e.file))?;
                println!("{:<20} ok  {}  ({origin})", e.name, sha256_hex(&bytes));
                // Derived data: the graph passes done once here instead of at every start.
                let (path, size) = plan_cache::write(dir, e, &bytes)?;
                println!(
                    "{:<20} plan cached  {} ({size} bytes)",
                    e.name,
                    path.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCmd::Verify { names, all, config } => {
            let dir = &config.models.models_dir;
            let manifest = Manifest::load(&dir.join("manifest.toml"))?;
            let entries = provision::entries(&manifest, &names, all)?;
            for (name, sha) in provision::verify_all(dir, &entries)? {
                println!("{name:<20} ok  {sha}");
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCmd::Push {
            destination,
            names,
            all,
            config,
        } => {
            let rest = destination
                .strip_prefix("s3://")
                .ok_or_else(|| anyhow::anyhow!("destination must look like s3://bucket/prefix"))?;
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let uploaded = tokio::runtime::Runtime::new()?.block_on(async {
                let client = ekyc_aws::client().await;
                ekyc_aws::models::push(
                    &client,
                    &config.models.models_dir,
                    bucket,
                    prefix,
                    &names,
                    all,
                )
                .await
            })?;
            for u in uploaded {
                println!("uploaded {u}");
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCmd::List { config } => {
            let dir = &config.models.models_dir;
            let manifest = Manifest::load(&dir.join("manifest.toml"))?;
            println!(
                "{:<20} {:<9} {:<8} {:<10} {:<9} license",
                "name", "role", "default", "input", "present"
            );
            for e in &manifest.models {
                let present = provision::verify_all(dir, &[e]).is_ok();
                println!(
                    "{:<20} {:<9} {:<8} {:<10} {:<9} {}",
                    e.name,
                    format!("{:?}", e.role).to_lowercase(),
                    e.default,
                    format!("{}x{}", e.input.width, e.input.height),
                    if present { "yes" } else { "no" },
                    e.license
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
