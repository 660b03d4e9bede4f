//! One file per FAL model: the input it takes and what its result holds.
//! A model of an existing product (text to image, an avatar image, a
//! training) is one file here and one line in [`MODELS`]; the `fal.*_model`
//! settings pick among them by FAL's id, and a setting that names no model
//! here stops the daemon at start (its input shape would be a guess).

mod flux_lora;
mod flux_lora_fast_training;
mod flux_lora_portrait_trainer;
mod imagen4;

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

/// Every model the bot can ask.
pub static MODELS: &[&dyn FalModel] = &[
    &imagen4::Imagen4,
    &flux_lora::FluxLora,
    &flux_lora_portrait_trainer::PortraitTrainer,
    &flux_lora_fast_training::FastTraining,
];

/// The model FAL calls `id`.
pub fn model(id: &str) -> Option<&'static dyn FalModel> {
    MODELS.iter().copied().find(|m| m.id() == id)
}

/// The model `id` as `product`'s: `Err` says why not, for the setting that named it.
pub fn model_for(product: Product, id: &str) -> Result<&'static dyn FalModel, String> {
    match model(id) {
        Some(m) if m.product() == product => Ok(m),
        Some(m) => Err(format!("{id} makes {:?}, not {product:?}", m.product())),
        None => {
            let known: Vec<&str> = MODELS.iter().filter(|m| m.product() == product).map(|m| m.id()).collect();
            Err(format!("no model file for {id} (fal_job/models); known: {}", known.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_is_named_once_and_found_by_its_id() {
        for m in MODELS {
            assert_eq!(model(m.id()).map(|found| found.id()), Some(m.id()));
            assert_eq!(MODELS.iter().filter(|other| other.id() == m.id()).count(), 1, "{}", m.id());
        }
        assert!(model_for(Product::Training, "fal-ai/flux-lora").is_err(), "an image model is no trainer");
        let unknown = model_for(Product::TextToImage, "fal-ai/unknown").err().unwrap_or_default();
        assert!(unknown.contains("fal-ai/imagen4/preview"), "{unknown}");
    }

    #[test]
    fn results_are_read_as_fal_answers_them() {
        let images = serde_json::json!({ "images": [{ "url": "https://fal.media/a.png" }, { "url": "https://fal.media/b.png" }] });
        assert_eq!(
            model("fal-ai/flux-lora").unwrap().images(&images),
            ["https://fal.media/a.png", "https://fal.media/b.png"]
        );
        let trained = serde_json::json!({ "diffusers_lora_file": { "url": "https://fal.media/w.safetensors" } });
        let weights = model("fal-ai/flux-lora-portrait-trainer").unwrap().weights(&trained).unwrap();
        assert_eq!(weights, Weights { lora_url: "https://fal.media/w.safetensors", config_url: None });
    }
}
