//! Google's Imagen 4 on FAL: text to image. It names aspect ratios the
//! plain way (`9:16`), where FLUX names sizes (`portrait_16_9`).

use serde_json::{json, Value};

use super::model::{Ask, FalModel, Product};

pub struct Imagen4;

impl FalModel for Imagen4 {
    fn id(&self) -> &'static str {
        "fal-ai/imagen4/preview"
    }

    fn product(&self) -> Product {
        Product::TextToImage
    }

    fn input(&self, ask: &Ask<'_>) -> Option<Value> {
        let Ask::TextToImage { prompt, size, num_images } = ask else { return None };
        Some(json!({ "prompt": prompt, "aspect_ratio": aspect_ratio(size), "num_images": num_images }))
    }
}

/// Imagen's name for a FLUX `image_size`.
fn aspect_ratio(size: &str) -> &'static str {
    match size {
        "portrait_4_3" => "3:4",
        "portrait_16_9" => "9:16",
        "landscape_4_3" => "4:3",
        "landscape_16_9" => "16:9",
        _ => "1:1",
    }
}
