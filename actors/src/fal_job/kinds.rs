//! The kinds of work FAL workers do, each declared once: its name, its
//! payload, its attempts and what a user calls it.

use serde::{Deserialize, Serialize};

use crate::jobs::kind::{Declared, JobKind, Title};
use crate::store::fal::FalKind;

/// Text to image.
pub const FAL_IMAGINE: JobKind<ImageRequest> =
    JobKind::new("fal.imagine", Title { ru: "картинка по описанию", en: "text-to-image" }, 5);
/// An image from the user's main avatar.
pub const FAL_GENERATE: JobKind<ImageRequest> =
    JobKind::new("fal.generate", Title { ru: "картинка с аватаром", en: "avatar image" }, 5);
/// An avatar's LoRA training.
pub const FAL_TRAIN: JobKind<Train> =
    JobKind::new("fal.train", Title { ru: "обучение аватара", en: "avatar training" }, 5);
/// A finished request's files copied to S3 and sent: retried for a while,
/// as FAL keeps results for a day.
pub const FAL_DELIVER: JobKind<FalRequestRef> =
    JobKind::new("fal.deliver", Title { ru: "получение результата", en: "fetching a result" }, 10);
/// A request whose callback does not come, looked after: backs off from
/// 5 s to a minute until the request's timeout; the attempts only bound a runaway.
pub const FAL_POLL: JobKind<FalRequestRef> =
    JobKind::new("fal.poll", Title { ru: "ожидание результата", en: "waiting for a result" }, 100_000);

/// What a user calls the job that made a request of `kind`.
pub fn title_of_request(kind: FalKind) -> Title {
    match kind {
        FalKind::Imagine => FAL_IMAGINE.title,
        FalKind::Generate => FAL_GENERATE.title,
        FalKind::Train => FAL_TRAIN.title,
    }
}

/// Every kind a FAL worker takes.
pub const ALL: [&dyn Declared; 5] = [&FAL_IMAGINE, &FAL_GENERATE, &FAL_TRAIN, &FAL_DELIVER, &FAL_POLL];

/// `fal.imagine` and `fal.generate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRequest {
    pub prompt: String,
    pub chat_id: i64,
    pub language: String,
}

/// `fal.train`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Train {
    pub avatar_id: i64,
    pub chat_id: i64,
    pub language: String,
}

/// `fal.deliver` and `fal.poll`: the FAL request they look after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FalRequestRef {
    pub request_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::kind::tests::through_the_jobs_table as round_trip;

    #[test]
    fn every_payload_survives_the_jobs_table() {
        round_trip(&FAL_IMAGINE, ImageRequest { prompt: "a fox".into(), chat_id: 1, language: "en".into() });
        round_trip(&FAL_TRAIN, Train { avatar_id: 3, chat_id: 1, language: "en".into() });
        round_trip(&FAL_DELIVER, FalRequestRef { request_id: "r".into() });
    }
}
