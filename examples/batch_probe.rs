//! Issue 16's batching lever, measured: for each model, N single-image runs against one run with a
//! batch dimension of N (same passes, same codegen), interleaved, on one thread (wall time of an otherwise idle machine).
//!
//! ```sh
//! cargo run --release --example batch_probe -- [MODELS_DIR] [N] [ROUNDS]
//! ```
//!
//! Prints, per model, ms per image for both ways and the ratio. The inputs are random (the time of
//! these graphs does not depend on the values).

use ekyc_models::manifest::Manifest;
use std::time::Instant;
use tract_onnx::prelude::*;

fn plan(bytes: &[u8], name: &str, shape: &[usize]) -> TractResult<Arc<TypedRunnableModel>> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))?
        .with_input_fact(0, f32::fact(shape).into())?
        .into_typed()?;
    let mut model = ekyc_models::passes::apply_all(model, name)?;
    model.optimize()?;
    model.into_runnable()
}

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).map_or("models", String::as_str);
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(30);
    let manifest = Manifest::from_toml(
        &std::fs::read_to_string(format!("{dir}/manifest.toml"))?,
        "manifest",
    )?;
    println!("batch of {n}, {rounds} interleaved rounds, ms per image (median, one thread)");
    println!(
        "{:<18} {:>10} {:>10} {:>7}",
        "model", "N x 1", "1 x N", "ratio"
    );
    for name in [
        "blazeface_short",
        "face_mesh",
        "iris",
        "apk_v1_crop27",
        "mobilefacenet",
    ] {
        let Some(e) = manifest.models.iter().find(|m| m.name == name) else {
            continue;
        };
        let Ok(bytes) = std::fs::read(format!("{dir}/{}", e.file)) else {
            println!("{name}: not provisioned");
            continue;
        };
        let one = e.input.tensor_shape();
        let mut many = one;
        many[0] = n;
        let p1 = plan(&bytes, name, &one)?;
        let pn = match plan(&bytes, name, &many) {
            Ok(p) => p,
            Err(err) => {
                println!("{name:<18} no batch dimension: {}", err.root_cause());
                continue;
            }
        };
        let x1 = Tensor::zero::<f32>(&one)?;
        let xn = Tensor::zero::<f32>(&many)?;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            p1.run(tvec!(x1.clone().into()))?;
            pn.run(tvec!(xn.clone().into()))?;
        }
        for _ in 0..rounds {
            let t = Instant::now();
            for _ in 0..n {
                p1.run(tvec!(x1.clone().into()))?;
            }
            a.push(t.elapsed().as_secs_f64() * 1e3 / n as f64);
            let t = Instant::now();
            pn.run(tvec!(xn.clone().into()))?;
            b.push(t.elapsed().as_secs_f64() * 1e3 / n as f64);
        }
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let (ma, mb) = (a[a.len() / 2], b[b.len() / 2]);
        println!("{name:<18} {ma:>10.3} {mb:>10.3} {:>7.3}", mb / ma);
    }
    Ok(())
}
