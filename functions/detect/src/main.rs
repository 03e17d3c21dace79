//! The detect Lambda's binary: tracing, configuration and clients once, then the runtime loop.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use trailsight::aws::retry::load_sdk_config;
use trailsight_detect::config::Config;
use trailsight_detect::handler::Detect;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lambda_runtime::tracing::init_default_subscriber();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "Bad configuration."))?;
    let detect = Detect::new(&config, &load_sdk_config().await)?;
    let detect = &detect;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = trailsight_detect::handler::evaluation_deadline(event.context.deadline);
        detect.handle(event.payload, deadline).await
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
