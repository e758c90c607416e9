//! The S3 upload-trigger Lambda: ObjectCreated events under EKYC_UPLOADS_PREFIX → verdict JSON under
//! EKYC_RESULTS_PREFIX. Models load once at init (from EKYC_MODEL_BUCKET when set). Inside Lambda
//! (or with EKYC_METRICS=emf) it prints CloudWatch EMF lines: one at init, one per record.

use aws_lambda_events::event::s3::S3Event;
use ekyc_aws::trigger::Trigger;
use ekyc_core::metrics::{Init, ModelSource};
use ekyc_liveness::{logging, Settings};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let started = Instant::now();
    logging::tune_allocator();
    logging::init();
    let settings = Settings::from_env()?;
    let config = settings.s3();
    let loaded = settings.load_pipeline().await;
    let init_ms = started.elapsed().as_secs_f64() * 1e3;
    let init = match &loaded {
        Ok(p) => Init::loaded(ModelSource::from_origin(p.origin()), init_ms),
        Err(e) => Init::failed(e.code(), init_ms),
    };
    if let Some(line) = config.metrics.line(init) {
        println!("{line}");
    }
    let trigger = Arc::new(Trigger {
        client: ekyc_aws::client().await,
        pipeline: Arc::new(loaded?),
        config,
    });
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<S3Event>| {
        let trigger = trigger.clone();
        async move {
            let reports = trigger
                .handle(ev.payload, &ev.context.request_id)
                .await
                .map_err(Diagnostic::from)?;
            Ok::<_, Diagnostic>(serde_json::json!({ "records": reports }))
        }
    }))
    .await
}
