//! TelegramPoller: the one replica that talks to getUpdates. This shell
//! connects (getMe, retried with backoff); polling itself arrives with the
//! job queue.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use teloxide::prelude::Requester;
use teloxide::Bot;

use crate::backoff::Backoff;
use crate::clients::telegram_bot;
use crate::services::Services;

pub struct TelegramPoller;

pub enum PollerMsg {
    Connect,
}

pub struct PollerState {
    bot: Bot,
    attempt: u32,
    pub username: Option<String>,
}

const RETRY: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));

impl Actor for TelegramPoller {
    type Msg = PollerMsg;
    type State = PollerState;
    type Arguments = Services;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        services: Services,
    ) -> Result<Self::State, ActorProcessingErr> {
        let bot = telegram_bot(&services.settings.telegram)?;
        myself.send_message(PollerMsg::Connect)?;
        Ok(PollerState { bot, attempt: 0, username: None })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            PollerMsg::Connect => match state.bot.get_me().await {
                Ok(me) => {
                    tracing::info!(bot = %me.username(), "connected to the Bot API");
                    state.username = Some(me.username().to_owned());
                    state.attempt = 0;
                }
                Err(e) => {
                    let delay = RETRY.delay(state.attempt);
                    state.attempt += 1;
                    tracing::warn!(error = %e, attempt = state.attempt, retry_in = ?delay, "getMe failed");
                    myself.send_after(delay, || PollerMsg::Connect);
                }
            },
        }
        Ok(())
    }
}
