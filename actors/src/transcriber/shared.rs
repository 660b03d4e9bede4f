//! What every transcription step holds: the services, and the Bot API and
//! OpenAI clients.

use crate::clients::openai::OpenAi;
use crate::clients::{ClientError, TgBot};
use crate::services::Services;

#[derive(Clone)]
pub struct Transcriber {
    pub(super) services: Services,
    pub(super) bot: TgBot,
    pub(super) openai: OpenAi,
}

impl Transcriber {
    pub fn new(services: Services) -> Result<Self, ClientError> {
        let bot = services.telegram.clone();
        let openai = OpenAi::new(&services.settings.openai)?;
        Ok(Self { services, bot, openai })
    }
}
