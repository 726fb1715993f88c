//! Wick's look: the bundled Inter font, one accent colour, and light and dark visuals with the same
//! spacing.

use egui::{Color32, FontData, FontDefinitions, FontFamily, FontId, TextStyle};

pub const ACCENT: Color32 = Color32::from_rgb(0xF5, 0x9E, 0x0B);
pub const GOOD: Color32 = Color32::from_rgb(0x16, 0xA3, 0x4A);
pub const BAD: Color32 = Color32::from_rgb(0xDC, 0x26, 0x26);
pub const TRAIN_COLOUR: Color32 = Color32::from_rgb(0x3B, 0x82, 0xF6);
pub const VALID_COLOUR: Color32 = Color32::from_rgb(0xF9, 0x73, 0x16);

const INTER_REGULAR: &[u8] = include_bytes!("../../assets/fonts/Inter-Regular.otf");
const INTER_SEMIBOLD: &[u8] = include_bytes!("../../assets/fonts/Inter-SemiBold.otf");

/// The strong text family (headings, buttons that matter).
pub fn strong_family() -> FontFamily {
    FontFamily::Name("strong".into())
}

/// Installs fonts and both themes on a context.
pub fn install(ctx: &egui::Context, dark: bool) {
    let mut fonts = FontDefinitions::default();
    fonts
        .font_data
        .insert("inter".into(), FontData::from_static(INTER_REGULAR).into());
    fonts.font_data.insert(
        "inter-semibold".into(),
        FontData::from_static(INTER_SEMIBOLD).into(),
    );
    if let Some(list) = fonts.families.get_mut(&FontFamily::Proportional) {
        list.insert(0, "inter".into());
    }
    // egui's default fonts stay behind Inter for symbols Inter lacks.
    let mut strong = vec!["inter-semibold".to_string()];
    strong.extend(
        fonts
            .families
            .get(&FontFamily::Proportional)
            .cloned()
            .unwrap_or_default(),
    );
    fonts.families.insert(strong_family(), strong);
    ctx.set_fonts(fonts);
    for theme in [egui::Theme::Light, egui::Theme::Dark] {
        ctx.style_mut_of(theme, |style| {
            style.text_styles = [
                (TextStyle::Heading, FontId::new(22.0, strong_family())),
                (TextStyle::Body, FontId::new(14.0, FontFamily::Proportional)),
                (
                    TextStyle::Button,
                    FontId::new(14.0, FontFamily::Proportional),
                ),
                (
                    TextStyle::Small,
                    FontId::new(11.5, FontFamily::Proportional),
                ),
                (
                    TextStyle::Monospace,
                    FontId::new(13.0, FontFamily::Monospace),
                ),
            ]
            .into();
            style.spacing.item_spacing = egui::vec2(8.0, 6.0);
            style.spacing.button_padding = egui::vec2(10.0, 5.0);
            style.spacing.interact_size.y = 26.0;
            style.visuals.selection.bg_fill = ACCENT.gamma_multiply(0.55);
            style.visuals.hyperlink_color = TRAIN_COLOUR;
            style.visuals.widgets.hovered.corner_radius = 6.into();
            style.visuals.widgets.inactive.corner_radius = 6.into();
            style.visuals.widgets.active.corner_radius = 6.into();
            // Check marks and arrows are drawn with the widget's foreground stroke: egui's 1 px made
            // a ticked box hard to tell from an empty one.
            for w in [
                &mut style.visuals.widgets.inactive,
                &mut style.visuals.widgets.hovered,
                &mut style.visuals.widgets.active,
            ] {
                w.fg_stroke.width = w.fg_stroke.width.max(2.0);
            }
        });
    }
    set_dark(ctx, dark);
}

pub fn set_dark(ctx: &egui::Context, dark: bool) {
    ctx.set_theme(if dark {
        egui::Theme::Dark
    } else {
        egui::Theme::Light
    });
}

/// A rounded card frame used for template cards, the drop zone and panels.
pub fn card(ui: &egui::Ui) -> egui::Frame {
    egui::Frame::group(ui.style())
        .corner_radius(10.0)
        .inner_margin(12.0)
        .fill(ui.visuals().faint_bg_color)
}

/// Section titles inside a screen.
pub fn section(ui: &mut egui::Ui, title: &str) {
    ui.add_space(6.0);
    ui.label(
        egui::RichText::new(title)
            .family(strong_family())
            .size(16.0),
    );
}
