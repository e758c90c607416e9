//! The S3 upload-trigger Lambda: ObjectCreated events under EKYC_UPLOADS_PREFIX → verdict JSON under
//! EKYC_RESULTS_PREFIX. Models load once at init (from EKYC_MODEL_BUCKET when set).

use aws_lambda_events::event::s3::S3Event;
use ekyc_liveness::s3::{self, trigger::Trigger};
use ekyc_liveness::Config;
use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ekyc_liveness::logging::tune_allocator();
    ekyc_liveness::logging::init();
    let config = Config::from_env()?;
    let pipeline = s3::load_pipeline(config).await?;
    let trigger = Arc::new(Trigger {
        client: s3::client().await,
        pipeline: Arc::new(pipeline),
    });
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<S3Event>| {
        let trigger = trigger.clone();
        async move {
            let reports = trigger.handle(ev.payload, &ev.context.request_id).await?;
            Ok::<_, lambda_runtime::Error>(serde_json::json!({ "records": reports }))
        }
    }))
    .await
}
