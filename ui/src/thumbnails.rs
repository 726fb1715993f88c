//! Image thumbnails for the Data and Evaluate screens, decoded off the UI thread and uploaded as
//! textures on demand.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use wick_core::data::ImageIndex;

/// Largest thumbnail side in pixels.
const THUMB_SIDE: u32 = 96;
/// Thumbnails decoded per dataset up front; the grids show at most this many.
pub const MAX_THUMBNAILS: usize = 240;

pub struct Thumbnails {
    waker: crate::waker::Waker,
    textures: HashMap<PathBuf, egui::TextureHandle>,
    requested: HashSet<PathBuf>,
    sender: std::sync::mpsc::Sender<Vec<PathBuf>>,
    images: std::sync::mpsc::Receiver<(PathBuf, egui::ColorImage)>,
}

impl Thumbnails {
    pub fn new(waker: crate::waker::Waker) -> Self {
        let (sender, paths) = std::sync::mpsc::channel::<Vec<PathBuf>>();
        let (image_tx, images) = std::sync::mpsc::channel();
        let repaint = waker.clone();
        let _ = std::thread::Builder::new()
            .name("wick-thumbnails".into())
            .spawn(move || {
                while let Ok(batch) = paths.recv() {
                    for path in batch {
                        if let Some(image) = decode_thumbnail(&path) {
                            if image_tx.send((path, image)).is_err() {
                                return;
                            }
                            repaint.wake();
                        }
                    }
                }
            });
        Self {
            waker,
            textures: HashMap::new(),
            requested: HashSet::new(),
            sender,
            images,
        }
    }

    /// Asks for thumbnails of a dataset's first images of each class (round-robin, so every class shows).
    pub fn request(&mut self, index: &ImageIndex) {
        let Ok(samples) = index.samples() else { return };
        let mut by_class: Vec<Vec<PathBuf>> = vec![Vec::new(); index.classes.len()];
        for (path, class) in samples {
            if let Some(v) = by_class.get_mut(class) {
                v.push(path);
            }
        }
        let mut batch = Vec::new();
        let longest = by_class.iter().map(Vec::len).max().unwrap_or(0);
        'outer: for i in 0..longest {
            for class in &by_class {
                if let Some(p) = class.get(i) {
                    batch.push(p.clone());
                    if batch.len() >= MAX_THUMBNAILS {
                        break 'outer;
                    }
                }
            }
        }
        self.request_paths(batch);
    }

    pub fn request_paths(&mut self, paths: Vec<PathBuf>) {
        let fresh: Vec<PathBuf> = paths
            .into_iter()
            .filter(|p| self.requested.insert(p.clone()))
            .collect();
        if !fresh.is_empty() {
            let _ = self.sender.send(fresh);
        }
    }

    /// The texture of a thumbnail once it is decoded.
    pub fn get(&mut self, path: &Path) -> Option<&egui::TextureHandle> {
        let ctx = self.waker.ctx()?;
        while let Ok((p, image)) = self.images.try_recv() {
            let name = p.display().to_string();
            let texture = ctx.load_texture(name, image, egui::TextureOptions::NEAREST);
            self.textures.insert(p, texture);
        }
        self.textures.get(path)
    }
}

fn decode_thumbnail(path: &Path) -> Option<egui::ColorImage> {
    let img = image::open(path).ok()?;
    let img = if img.width() > THUMB_SIDE || img.height() > THUMB_SIDE {
        img.thumbnail(THUMB_SIDE, THUMB_SIDE)
    } else {
        img
    };
    let rgba = img.to_rgba8();
    let size = [rgba.width() as usize, rgba.height() as usize];
    Some(egui::ColorImage::from_rgba_unmultiplied(
        size,
        rgba.as_raw(),
    ))
}
