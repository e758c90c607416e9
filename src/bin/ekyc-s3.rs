//! The S3 upload-trigger Lambda: ObjectCreated events under EKYC_UPLOADS_PREFIX → verdict JSON under
//! EKYC_RESULTS_PREFIX. Models load once at init (from EKYC_MODEL_BUCKET when set).

use aws_lambda_events::event::s3::S3Event;
use ekyc_aws::trigger::Trigger;
use ekyc_liveness::{logging, Settings};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::tune_allocator();
    logging::init();
    let settings = Settings::from_env()?;
    let pipeline = settings.load_pipeline().await?;
    let trigger = Arc::new(Trigger {
        client: ekyc_aws::client().await,
        pipeline: Arc::new(pipeline),
        config: settings.s3(),
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
