//! The wgpu surface the window is painted on, and egui's wgpu renderer.

use anyhow::{anyhow, Context, Result};
use egui_wgpu::wgpu;

pub struct Gpu {
    surface: wgpu::Surface<'static>,
    device: wgpu::Device,
    queue: wgpu::Queue,
    config: wgpu::SurfaceConfiguration,
    renderer: egui_wgpu::Renderer,
    pub adapter_name: String,
}

/// The window plus one display handle asked for once.
///
/// tao on X11 opens a new X connection on every `display_handle()` call, and wgpu refuses a surface
/// whose display differs from its instance's ("display handle used to create this Instance does not
/// match"). So the handle is asked for once and reused for both.
#[derive(Clone, Debug)]
struct PinnedDisplay {
    window: tauri::Window,
    display: raw_window_handle::RawDisplayHandle,
}

// SAFETY: the raw display pointer is only handed to wgpu for instance and surface creation; the
// window it belongs to outlives the surface (both live until the app exits).
unsafe impl Send for PinnedDisplay {}
unsafe impl Sync for PinnedDisplay {}

impl raw_window_handle::HasWindowHandle for PinnedDisplay {
    fn window_handle(
        &self,
    ) -> Result<raw_window_handle::WindowHandle<'_>, raw_window_handle::HandleError> {
        self.window.window_handle()
    }
}

impl raw_window_handle::HasDisplayHandle for PinnedDisplay {
    fn display_handle(
        &self,
    ) -> Result<raw_window_handle::DisplayHandle<'_>, raw_window_handle::HandleError> {
        // SAFETY: the handle came from this window's display_handle() and stays valid while it lives.
        Ok(unsafe { raw_window_handle::DisplayHandle::borrow_raw(self.display) })
    }
}

impl Gpu {
    pub fn new(window: &tauri::Window) -> Result<Self> {
        use raw_window_handle::HasDisplayHandle;
        let display = window
            .display_handle()
            .map_err(|e| anyhow!("no display handle: {e}"))?
            .as_raw();
        let pinned = PinnedDisplay {
            window: window.clone(),
            display,
        };
        let desc =
            wgpu::InstanceDescriptor::new_with_display_handle_from_env(Box::new(pinned.clone()));
        let instance = wgpu::Instance::new(desc);
        let size = window.inner_size().context("reading the window size")?;
        let surface = instance
            .create_surface(pinned)
            .context("creating the drawing surface")?;
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            compatible_surface: Some(&surface),
            power_preference: wgpu::PowerPreference::LowPower,
            ..Default::default()
        }))
        .context("no graphics adapter can draw to this window (is a Vulkan, Metal, DX12 or GL driver installed?)")?;
        let info = adapter.get_info();
        let adapter_name = format!("{} ({:?})", info.name, info.backend);
        let (device, queue) = pollster::block_on(adapter.request_device(&Default::default()))
            .context("opening the graphics device")?;
        let caps = surface.get_capabilities(&adapter);
        // egui paints in gamma space: a non-sRGB surface format shows its colours as designed.
        let format = caps
            .formats
            .iter()
            .copied()
            .find(|f| !f.is_srgb())
            .or_else(|| caps.formats.first().copied())
            .ok_or_else(|| anyhow!("the surface supports no texture format"))?;
        let config = wgpu::SurfaceConfiguration {
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
            format,
            color_space: wgpu::SurfaceColorSpace::Auto,
            width: size.width.max(1),
            height: size.height.max(1),
            present_mode: wgpu::PresentMode::Fifo,
            alpha_mode: caps
                .alpha_modes
                .first()
                .copied()
                .unwrap_or(wgpu::CompositeAlphaMode::Auto),
            view_formats: vec![],
            desired_maximum_frame_latency: 2,
        };
        surface.configure(&device, &config);
        let renderer = egui_wgpu::Renderer::new(&device, format, Default::default());
        Ok(Self {
            surface,
            device,
            queue,
            config,
            renderer,
            adapter_name,
        })
    }

    pub fn resize(&mut self, width: u32, height: u32) {
        if width > 0 && height > 0 && (width, height) != (self.config.width, self.config.height) {
            self.config.width = width;
            self.config.height = height;
            self.surface.configure(&self.device, &self.config);
        }
    }

    pub fn size(&self) -> (u32, u32) {
        (self.config.width, self.config.height)
    }

    pub fn max_texture_side(&self) -> usize {
        self.device.limits().max_texture_dimension_2d as usize
    }

    /// Uploads texture changes, draws the frame and frees textures egui no longer needs. Returns false
    /// when the surface was not ready (the caller should paint again).
    pub fn paint(
        &mut self,
        jobs: &[egui::ClippedPrimitive],
        textures: &mut egui::TexturesDelta,
        pixels_per_point: f32,
        clear: egui::Color32,
    ) -> bool {
        for (id, deltas) in textures.set.drain() {
            for delta in &deltas {
                self.renderer
                    .update_texture(&self.device, &self.queue, id, delta);
            }
        }
        let painted = self.draw(jobs, pixels_per_point, clear);
        for id in textures.free.drain() {
            self.renderer.free_texture(&id);
        }
        painted
    }

    fn draw(
        &mut self,
        jobs: &[egui::ClippedPrimitive],
        pixels_per_point: f32,
        clear: egui::Color32,
    ) -> bool {
        let frame = match self.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(t)
            | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
            _ => {
                // Lost or outdated (e.g. mid-resize): reconfigure and try on the next frame.
                self.surface.configure(&self.device, &self.config);
                return false;
            }
        };
        let screen = egui_wgpu::ScreenDescriptor {
            size_in_pixels: [self.config.width, self.config.height],
            pixels_per_point,
        };
        let view = frame.texture.create_view(&Default::default());
        let mut encoder = self.device.create_command_encoder(&Default::default());
        let mut commands =
            self.renderer
                .update_buffers(&self.device, &self.queue, &mut encoder, jobs, &screen);
        {
            let [r, g, b, a] = clear.to_normalized_gamma_f32();
            let pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("egui"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color {
                            r: r as f64,
                            g: g as f64,
                            b: b as f64,
                            a: a as f64,
                        }),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                ..Default::default()
            });
            self.renderer
                .render(&mut pass.forget_lifetime(), jobs, &screen);
        }
        commands.push(encoder.finish());
        self.queue.submit(commands);
        self.queue.present(frame);
        true
    }
}
