//! Transcriber pool: turns voice, audio and video notes into text. This shell
//! checks what the work needs (ffmpeg, the database); job handling arrives
//! with the queue.

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::services::Services;

pub struct TranscriberPool;

pub enum TranscriberMsg {}

pub struct TranscriberState {
    pub services: Services,
    pub ffmpeg: String,
}

impl Actor for TranscriberPool {
    type Msg = TranscriberMsg;
    type State = TranscriberState;
    type Arguments = Services;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        services: Services,
    ) -> Result<Self::State, ActorProcessingErr> {
        let ffmpeg = ffmpeg_version().await?;
        tracing::info!(%ffmpeg, "transcriber pool ready");
        Ok(TranscriberState { services, ffmpeg })
    }
}

/// The first line of `ffmpeg -version`; an error when ffmpeg is missing.
pub async fn ffmpeg_version() -> Result<String, ActorProcessingErr> {
    let output = tokio::process::Command::new("ffmpeg")
        .arg("-version")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("ffmpeg is not runnable: {e}"))?;
    if !output.status.success() {
        return Err(format!("ffmpeg -version exited with {}", output.status).into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).lines().next().unwrap_or_default().to_owned())
}
