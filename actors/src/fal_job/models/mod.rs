//! One file per FAL model: the input it takes and what its result holds.
//! A model of an existing product (text to image, an avatar image, a
//! training) is one file here and one line in [`MODELS`]; the `fal.*_model`
//! settings pick among them by FAL's id, and a setting that names no model
//! here stops the daemon at start (its input shape would be a guess).

mod flux_lora;
mod flux_lora_fast_training;
mod flux_lora_portrait_trainer;
mod imagen4;
mod model;

pub use model::{Ask, FalModel, Product, Weights};

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
