//! What a FAL model is to the bot: the product it makes, what it is asked,
//! and how its result is read.

use serde_json::Value;

use crate::settings::FalSettings;
use crate::store::fal::FalKind;

/// What a model makes, and so what it is asked and priced for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// `/imagine`: `pricing.text_to_image`, `fal.text_to_image_model`.
    TextToImage,
    /// `/generate`: `pricing.avatar_image`, `fal.image_model`.
    AvatarImage,
    /// An avatar's LoRA: `pricing.avatar_training`, `fal.training_model`.
    Training,
}

impl Product {
    /// The model id the settings give this product.
    pub fn configured(self, fal: &FalSettings) -> &str {
        match self {
            Product::TextToImage => &fal.text_to_image_model,
            Product::AvatarImage => &fal.image_model,
            Product::Training => &fal.training_model,
        }
    }

    /// What a FAL request of this product is recorded as.
    pub fn request_kind(self) -> FalKind {
        match self {
            Product::TextToImage => FalKind::Imagine,
            Product::AvatarImage => FalKind::Generate,
            Product::Training => FalKind::Train,
        }
    }

    /// The setting that names this product's model.
    pub fn setting(self) -> &'static str {
        match self {
            Product::TextToImage => "fal.text_to_image_model",
            Product::AvatarImage => "fal.image_model",
            Product::Training => "fal.training_model",
        }
    }
}

/// What a submission asks of its product, whatever the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask<'a> {
    TextToImage {
        prompt: &'a str,
        /// FLUX's `image_size` name (`square_hd`, `portrait_16_9`…), the user's `/settings`.
        size: &'a str,
        num_images: u8,
    },
    AvatarImage {
        prompt: &'a str,
        size: &'a str,
        num_images: u8,
        /// The avatar's trigger phrase, its weights (a URL FAL can fetch) and their weight.
        trigger: &'a str,
        lora_url: &'a str,
        lora_scale: f64,
    },
    Training {
        /// A zip of the avatar's photos, at a URL FAL can fetch.
        images_url: &'a str,
        trigger: &'a str,
        steps: u32,
    },
}

/// A trained avatar's files, as a training's result names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights<'a> {
    pub lora_url: &'a str,
    pub config_url: Option<&'a str>,
}

pub trait FalModel: Sync {
    /// FAL's endpoint id, as the settings name it.
    fn id(&self) -> &'static str;
    fn product(&self) -> Product;
    /// The request's `input`; `None` when `ask` is another product's.
    fn input(&self, ask: &Ask<'_>) -> Option<Value>;
    /// The images' URLs in a result (FAL's image models answer `images[].url`).
    fn images<'a>(&self, result: &'a Value) -> Vec<&'a str> {
        result["images"].as_array().into_iter().flatten().filter_map(|i| i["url"].as_str()).collect()
    }
    /// A training's weights (FAL's LoRA trainers answer `diffusers_lora_file` and `config_file`).
    fn weights<'a>(&self, result: &'a Value) -> Option<Weights<'a>> {
        let lora_url = result["diffusers_lora_file"]["url"].as_str()?;
        Some(Weights { lora_url, config_url: result["config_file"]["url"].as_str() })
    }
}
