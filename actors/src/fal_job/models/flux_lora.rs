//! FLUX.1 with LoRA weights on FAL: an image of the user's avatar, its
//! trigger phrase leading the prompt.

use serde_json::{json, Value};

use super::model::{Ask, FalModel, Product};

pub struct FluxLora;

impl FalModel for FluxLora {
    fn id(&self) -> &'static str {
        "fal-ai/flux-lora"
    }

    fn product(&self) -> Product {
        Product::AvatarImage
    }

    fn input(&self, ask: &Ask<'_>) -> Option<Value> {
        let Ask::AvatarImage { prompt, size, num_images, trigger, lora_url, lora_scale } = ask else {
            return None;
        };
        Some(json!({
            "prompt": format!("{trigger}, {prompt}"),
            "loras": [{ "path": lora_url, "scale": lora_scale }],
            "image_size": size, "num_images": num_images,
            "enable_safety_checker": true,
        }))
    }
}
