//! FalJob pool: submits training and generation requests to FAL's queue and
//! delivers results. This shell builds the FAL client; job handling arrives
//! with the queue.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::services::Services;

pub struct FalJobPool;

pub enum FalJobMsg {}

pub struct FalJobState {
    pub services: Services,
    pub http: reqwest::Client,
    pub queue_url: reqwest::Url,
}

impl Actor for FalJobPool {
    type Msg = FalJobMsg;
    type State = FalJobState;
    type Arguments = Services;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        services: Services,
    ) -> Result<Self::State, ActorProcessingErr> {
        let queue_url = reqwest::Url::parse(&services.settings.fal.queue_url)
            .map_err(|e| format!("fal.queue_url is not a valid URL: {e}"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(FalJobState { services, http, queue_url })
    }
}
